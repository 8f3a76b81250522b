"""A pytest plugin for apps' own tests: the ``fake_claude`` fixture.

Installed with the test kit (``pip install resilient-claude[testing]``) through the
``pytest11`` entry point, so any project that installs it can write::

    def test_my_app_survives_an_overload(fake_claude):
        fake_claude.respond("overloaded_error", "ok")
        answer = my_app.ask(fake_claude.client(), "Hi")
        assert [call.status for call in fake_claude.calls] == [529, 200]

The fixture is a :class:`~resilience.testing.FakeClaude` on a fresh
:class:`~resilience.VirtualClock` (``fake_claude.clock``), seed 0, open for the test and
closed after it. Many async clients at once run on its clock with
``fake_claude.run(main())`` (see :mod:`~resilience.testing.aio`). This module imports the SDK
only when a test asks for the fixture, so the plugin costs nothing in a run that does not use
it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .fake import FakeClaude

__all__ = ["fake_claude"]


@pytest.fixture
def fake_claude() -> Iterator[FakeClaude]:
    """A simulated Claude API on a fresh virtual clock, seed 0, closed after the test."""
    from ..clock import VirtualClock
    from .fake import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        yield api
