"""The one place that names the Claude models this project uses.

Every module, test and notebook imports these names; none spells a model id itself.
``tests/test_models.py`` fails when the installed ``anthropic`` SDK lists either id as
deprecated, so a retired model cannot hide in the course.
"""

from __future__ import annotations

MODEL = "claude-sonnet-4-6"
"""The model every example calls."""

FALLBACK_MODEL = "claude-haiku-4-5"
"""A smaller, cheaper model that fallback chains step down to."""

__all__ = ["FALLBACK_MODEL", "MODEL"]
