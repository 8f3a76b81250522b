"""The chaos server's log: one entry per attempt received, in the order received.

``GET /_chaos/log`` returns it as a JSON array; ``POST /_chaos/reset`` clears it. Each entry
says what the server did with one HTTP attempt, so a test can account for every request its
app made::

    [{"number": 1, "time": 0.004, "request_id": "req_chaos_000001", "retry_count": 0,
      "status": 529, "outcome": "overloaded_error", "stream": false, ...}, ...]

An entry is written when the server has decided the answer, before any delay it then
plays out: ``status`` is what the server answers (200 for a stream, even one that fails
after its 200), or None when it answers nothing (a timeout, a dropped connection).
The API key is never logged: no header is, except the two named below.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ChaosLog", "Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One attempt, as the chaos server received and answered it.

    Attributes:
        number: 1 for the first attempt since the server started (or was reset), 2 ...
        time: seconds since the server started (or was reset) when it arrived.
        request_id: the ``request-id`` of the answer (also in an error's body).
        retry_count: the client's ``x-stainless-retry-count`` header (0 for a first
            attempt), or None when the request did not carry one (not an SDK).
        status: the HTTP status sent, or None when no status was sent.
        outcome: what the server did: ``"ok"``, a catalogue error name (``"overloaded_error"``),
            ``"stream_overloaded_error"``, ``"stream_dropped"``, ``"stream_stalled"``,
            ``"timeout"``, ``"connection_error"``, ...
        stream: whether the request asked for a stream (``"stream": true``).
        method: the HTTP method.
        path: the URL path, e.g. ``/v1/messages``.
        model: the body's ``model``, or None.
        delay: seconds the server waited before its first byte (a slow answer, a timeout).
        tag: the request's ``x-chaos-tag`` header, or None: put a label there to find your
            own requests in the log (a test tags each call to match its attempts).
    """

    number: int
    time: float
    request_id: str
    retry_count: int | None
    status: int | None
    outcome: str
    stream: bool
    method: str
    path: str
    model: str | None = None
    delay: float = 0.0
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (``time`` and ``delay`` rounded to the microsecond)."""
        data = asdict(self)
        data["time"] = round(self.time, 6)
        data["delay"] = round(self.delay, 6)
        return data


class ChaosLog:
    """The entries, in order; safe to read from any thread while the server writes."""

    __slots__ = ("_entries", "_lock")

    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._lock = threading.Lock()

    def add(self, entry: Entry) -> None:
        """Append one entry."""
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def entries(self) -> list[Entry]:
        """A copy of the entries so far, in the order received."""
        with self._lock:
            return list(self._entries)

    def to_json(self) -> list[dict[str, Any]]:
        """The entries as JSON objects, in the order received."""
        return [entry.to_json() for entry in self.entries()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
