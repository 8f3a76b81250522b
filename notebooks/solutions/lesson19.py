"""Model answers for lesson 19, "Observability"."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from resilience.middleware import Attempt

REDACTED = "[REDACTED]"


def prepare(record: logging.LogRecord, key: str) -> bool:
    """A logging filter: add ``request_id``, replace the key in the final message."""
    if getattr(record, "request_id", None) is None:
        error = record.exc_info[1] if record.exc_info else None
        record.request_id = getattr(error, "request_id", None)
    message = record.getMessage()  # msg % args: the key may hide in either
    record.msg, record.args = message.replace(key, REDACTED), ()
    return True  # keep every record: remove the key, not the line


def on_call(attempts: Sequence[Attempt], history: Sequence[tuple[float, str]],
            until: float) -> dict[str, Any]:
    """The numbers an on-call dashboard shows, from an AttemptLog and a breaker's history."""
    sent = [a for a in attempts if a.sent]
    errors = Counter(str(a.status) if a.status is not None else str(a.error)
                     for a in sent if a.status is None or a.status >= 400)
    ends = [t for t, _ in history[1:]] + [until]
    open_seconds = sum(max(0.0, min(end, until) - start)
                       for (start, state), end in zip(history, ends, strict=True)
                       if state == "open")
    return {
        "calls": sum(1 for a in attempts if a.retry == 0),
        "retries": sum(1 for a in sent if a.retry > 0),
        "refused": len(attempts) - len(sent),
        "errors": dict(errors),
        "opened": sum(1 for _, state in history[1:] if state == "open"),
        "open_seconds": open_seconds,
    }
