"""Checkers for lesson 15, "Long requests and streams", and the paced stream it runs on.

* :func:`paced_stream`: a 200 stream whose text pieces arrive with silences between them on
  the virtual clock (the test kit's ``ok()`` sends a whole stream at once, and its
  ``stalled_stream`` has one silence). Each silence longer than the request's read timeout
  ends in ``httpx2.ReadTimeout``, as from a real server that went quiet.
* ``watch(client, model, messages, clock, deadline, silence)``: stream an answer, give up
  with ``TimeoutError`` once more than ``deadline`` seconds have passed since the call
  (checked at every event) or when the stream is silent for more than ``silence`` seconds;
  tolerate a slow but steady stream that ends in time.
* ``collect(client, model, messages, restarts)``: read a stream to the end, starting it
  again (at most ``restarts`` times) after a dropped connection or an ``overloaded_error``
  inside the stream; re-raise the last error as it is when the restarts run out, and any
  other error at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx2
from anthropic.types import MessageParam

from course import exercise
from resilience.catalogue import ERRORS
from resilience.clock import VirtualClock
from resilience.testing import responses
from resilience.testing.outcomes import Exchange, Outcome

__all__ = ["CHECKS", "WORDS", "PacedStream", "check_collect", "check_watch", "paced_stream"]

_SENTENCE = ("Long answers arrive one piece at a time, and every piece that arrives restarts "
             "the read timeout, so a slow but steady stream can run for as long as it likes.")
WORDS = tuple(_SENTENCE.split())
"""The default pieces of a paced stream, one word each (cycled for long streams)."""

_ENDS = ("stop", "drop")


@dataclass(frozen=True, slots=True)
class PacedStream(Outcome):
    """A 200 stream whose pieces arrive ``gaps`` seconds apart, on the virtual clock.

    The status, headers, ``message_start`` and ``content_block_start`` arrive at once. Then
    before piece ``i`` the stream is silent for ``gaps[i]`` seconds (None: silent for good).
    A silence longer than the request's read timeout moves the clock by the read timeout and
    the read fails with ``httpx2.ReadTimeout`` (raised raw while you iterate: the SDK neither
    wraps nor retries it); a request with no read timeout waiting on a silence for good gets
    the same error at once. After the last piece the stream ends as ``end`` says.

    A request that does not stream gets the whole ``Message`` after one silence as long as
    all the gaps together, since the server answers only when the text is done: past the read
    timeout that is a timeout (``APITimeoutError``, retried by the SDK). Its ``end`` is then
    a plain ``Message``, a body cut short (``APIConnectionError``) or the HTTP error named.
    Sync clients only (``api.client()``).

    Attributes:
        gaps: the silence before each piece, in seconds (each >= 0, or None).
        pieces: the text of each piece (as many as ``gaps``).
        end: ``"stop"`` (the stream completes), ``"drop"`` (the connection closes:
            ``httpx2.RemoteProtocolError``) or a catalogue error name (an ``event: error``).
    """

    gaps: tuple[float | None, ...]
    pieces: tuple[str, ...]
    end: str = "stop"
    headers: Mapping[str, str] = field(default_factory=dict)
    label = "stream_paced"

    def __post_init__(self) -> None:
        for gap in self.gaps:
            if gap is not None and (isinstance(gap, bool) or not isinstance(gap, int | float)):
                raise TypeError(f"gaps must hold numbers of seconds or None, got {gap!r}")
            if gap is not None and not 0 <= gap < math.inf:
                raise ValueError(f"gaps must be finite numbers of seconds >= 0 or None, "
                                 f"got {gap!r}")
        if len(self.pieces) != len(self.gaps) or not self.gaps:
            raise ValueError(f"pieces: give one piece per gap (at least one): "
                             f"{len(self.pieces)} pieces for {len(self.gaps)} gaps")
        if self.end not in _ENDS and self.end not in ERRORS:
            raise ValueError(f"end must be 'stop', 'drop' or an error name, got {self.end!r}")

    @property
    def text(self) -> str:
        """The whole text, as the pieces join up."""
        return "".join(self.pieces)

    def answer(self, exchange: Exchange) -> httpx2.Response:
        body = responses.message_body(f"msg_fake_{exchange.number:06d}", exchange.model,
                                      self.text, responses.estimate_tokens(exchange.prompt))
        if not exchange.stream:
            silence = None if None in self.gaps else sum(g for g in self.gaps if g is not None)
            _wait(exchange, silence, "no answer")
            if self.end == "stop":
                return responses.message_response(body, exchange.request_id)
            if self.end == "drop":
                return responses.dropped_response([b"{"], exchange.request_id, stream=False,
                                                  request=exchange.request, full_length=2)
            return responses.error_response(ERRORS[self.end], exchange.request_id)
        frames = responses.sse_frames(responses.stream_events(body, 1))
        head, tail = frames[:2], frames[3:]  # around the one text delta

        def body_parts() -> Iterator[bytes]:
            yield from head
            for gap, piece in zip(self.gaps, self.pieces, strict=True):
                _wait(exchange, gap, "the stream went silent")
                event = {"type": "content_block_delta", "index": 0,
                         "delta": {"type": "text_delta", "text": piece}}
                yield from responses.sse_frames([("content_block_delta", event)])
            if self.end == "drop":
                raise httpx2.RemoteProtocolError(responses.DROPPED_MESSAGE,
                                                  request=exchange.request)
            if self.end != "stop":
                yield from responses.sse_frames([responses.error_event(ERRORS[self.end])])
                return
            yield from tail

        return httpx2.Response(200, headers={"content-type": "text/event-stream; charset=utf-8",
                                             "request-id": exchange.request_id},
                               stream=_Body(body_parts))


class _Body(httpx2.SyncByteStream):
    """A response body produced by a generator function, read once."""

    def __init__(self, parts: Callable[[], Iterator[bytes]]) -> None:
        self._parts = parts

    def __iter__(self) -> Iterator[bytes]:
        return self._parts()


def _wait(exchange: Exchange, silence: float | None, what: str) -> None:
    """Let ``silence`` pass, or time out as a client with this read timeout would."""
    limit = exchange.read_timeout
    if silence is None or (limit is not None and silence > limit):
        if limit is not None:
            exchange.clock.advance(limit)
        how_long = "for good" if limit is None else f"for over {limit:g} s"
        raise httpx2.ReadTimeout(f"[simulated] {what} {how_long}", request=exchange.request)
    exchange.clock.advance(silence)


def paced_stream(gaps: Sequence[float | None], *, pieces: Sequence[str] | None = None,
                 end: str = "stop") -> PacedStream:
    """A stream whose pieces arrive ``gaps`` seconds apart (see :class:`PacedStream`).

    Args:
        gaps: the silence before each piece; None for a silence that never ends.
        pieces: the text of each piece (default: the words of :data:`WORDS`, in turn).
        end: ``"stop"``, ``"drop"`` or an error name such as ``"overloaded_error"``.

    Example: ``paced_stream([8] * 6)``: six words, one every 8 s, 48 s in all.
    """
    gaps = tuple(gaps)
    if pieces is None:
        words = [WORDS[i % len(WORDS)] for i in range(len(gaps))]
        pieces = [word + " " for word in words[:-1]] + words[-1:]
    return PacedStream(gaps, tuple(pieces), end, MappingProxyType({}))


# -- the checkers ---------------------------------------------------------------------------

_PROMPT: list[MessageParam] = [{"role": "user", "content": "Tell me a long story."}]
_DEADLINE, _SILENCE = 60.0, 10.0


def _watched(solution: Callable[..., Any], *outcomes: object,
             max_retries: int = 0) -> tuple[Any, float, int]:
    """Run ``watch`` against the simulated API: (result or timeout-like error, time, calls)."""
    import anthropic

    from resilience.testing import FakeClaude

    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*outcomes)
        client = api.client(max_retries=max_retries)
        try:
            result = solution(client, api.model, _PROMPT, clock, _DEADLINE, _SILENCE)
        except (TimeoutError, httpx2.TransportError, anthropic.APIError) as e:
            result = e
        return result, clock.now(), len(api.calls)


@exercise("15.1", "a watchdog for a stream")
def check_watch(solution: Callable[..., Any]) -> None:
    """Tolerates slow-but-steady streams; gives up a stall or a trickle in time."""
    from resilience.testing import timeout

    steady = paced_stream([8.0] * 6)
    got, now, calls = _watched(solution, steady)
    if isinstance(got, BaseException):
        raise AssertionError(
            f"a stream with a word every 8 s (48 s in all) raised {type(got).__name__} at "
            f"t={now:.0f} s; it never went silent for {_SILENCE:g} s and ended before the "
            f"{_DEADLINE:g} s deadline: return its text. (The read timeout bounds each "
            "silence, not the total.)")
    assert got == steady.text, (
        f"for a steady stream you returned {got!r}; expected {steady.text!r}.")
    assert calls == 1, f"make one request (you made {calls})."

    got, now, _ = _watched(solution, paced_stream([8.0, 8.0, None]))
    assert now <= _DEADLINE, (
        f"a stream that went silent after 2 words (t=16 s) held you until t={now:.0f} s. "
        f"Pass a read timeout of `silence` seconds with the request "
        f"(timeout=httpx2.Timeout(..., read=silence)): only a read can notice a silence.")
    assert isinstance(got, TimeoutError), (
        f"a stream that went silent returned {_what(got)}; raise TimeoutError (the "
        "built-in) from the httpx2.ReadTimeout the SDK lets through.")

    trickle = paced_stream([8.0] * 20)
    got, now, _ = _watched(solution, trickle)
    assert isinstance(got, TimeoutError), (
        f"a stream with a word every 8 s for 160 s returned {_what(got)} at t={now:.0f} s; "
        f"it never trips the read timeout, so check the {_DEADLINE:g} s deadline at every "
        "event and raise TimeoutError.")
    assert now <= _DEADLINE + _SILENCE, (
        f"you gave up on the 160 s trickle at t={now:.0f} s; check the deadline as each "
        f"event arrives, so you stop at the first one after t={_DEADLINE:g} s.")

    got, now, calls = _watched(solution, timeout(), timeout(), paced_stream([8.0] * 6),
                               max_retries=2)
    assert isinstance(got, TimeoutError), (
        f"the SDK spent t=0..{now - 48:.0f} s on two timed-out attempts before a 48 s stream "
        f"began, and you returned {_what(got)} at t={now:.0f} s. The deadline counts from "
        "your call, not from the first event: read clock.now() before create().")
    assert calls == 3, f"expected the SDK's 3 attempts, saw {calls}."


def _what(got: Any) -> str:
    if isinstance(got, BaseException):
        return f"{type(got).__name__}"
    return f"{got!r}"


def _collected(solution: Callable[..., Any], *outcomes: object,
               restarts: int) -> tuple[Any, int, tuple[str, ...]]:
    """Run ``collect`` against the simulated API: (result or error, calls, still queued)."""
    from resilience.testing import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(*outcomes)
        try:
            result = solution(api.client(max_retries=0), api.model, _PROMPT, restarts)
        except NotImplementedError:
            raise
        except Exception as e:  # what the learner's code raised is part of the answer
            result = e
        return result, len(api.calls), api.pending


@exercise("15.2", "restart a broken stream, at most N times")
def check_collect(solution: Callable[..., Any]) -> None:
    """Full text after drops and overloads; the last error, unwrapped, after N restarts."""
    import anthropic

    from resilience.testing import dropped_stream, ok, stream_error
    from resilience.testing.responses import DEFAULT_TEXT

    cases: list[tuple[str, list[Outcome], int]] = [
        ("a stream that works", [ok()], 1),
        ("an overload after 2 pieces, then success",
         [stream_error("overloaded_error", after_chunks=2), ok()], 2),
        ("two dropped connections, then success",
         [dropped_stream(after_chunks=2), dropped_stream(after_chunks=1), ok()], 3),
    ]
    for label, outcomes, calls in cases:
        got, made, _ = _collected(solution, *outcomes, restarts=2)
        if isinstance(got, BaseException) and 1 < made < calls:
            raise AssertionError(
                f"with {label} and restarts=2 you gave up after {made} requests; restarts=2 "
                "allows the first request and 2 more.")
        if isinstance(got, httpx2.TransportError):
            raise AssertionError(
                f"with {label} your code let {type(got).__name__} escape; a dropped "
                "connection raises the raw httpx2 error (lesson 11): restart on "
                "httpx2.TransportError too.")
        if isinstance(got, BaseException):
            raise AssertionError(f"with {label} and restarts=2 you raised "
                                 f"{type(got).__name__}; expected the full text.")
        assert got == DEFAULT_TEXT, (
            f"with {label} you returned {got!r}; expected {DEFAULT_TEXT!r}. Start the text "
            "afresh on each restart: the broken attempt's pieces are not part of the answer.")
        assert made == calls, f"with {label} expected {calls} requests, you made {made}."

    outcomes = [stream_error("overloaded_error", after_chunks=1),
                stream_error("overloaded_error", after_chunks=2), dropped_stream(after_chunks=1),
                ok()]
    got, made, _ = _collected(solution, *outcomes, restarts=2)
    assert made == 3, (
        f"with restarts=2 and three broken streams you made {made} requests; make the first "
        "and at most 2 more, then give up.")
    assert type(got) is httpx2.RemoteProtocolError, (
        f"after the restarts ran out you {_ended(got)}; re-raise the last error as it is "
        "(here the httpx2.RemoteProtocolError of the third, dropped stream), not a new or "
        "earlier one.")

    got, made, _ = _collected(solution, stream_error("overloaded_error", after_chunks=1), ok(),
                              restarts=0)
    assert made == 1 and isinstance(got, anthropic.APIStatusError), (
        f"with restarts=0 you made {made} requests and {_ended(got)}; make one request and "
        "re-raise its error.")

    got, made, _ = _collected(solution, stream_error("invalid_request_error", after_chunks=1),
                              ok(), restarts=2)
    assert made == 1 and isinstance(got, anthropic.APIStatusError), (
        f"a stream that ends in invalid_request_error led you to make {made} requests and "
        f"{_ended(got)}; no restart fixes a bad request: let it propagate at once "
        "(restart only when e.type == 'overloaded_error').")


def _ended(got: Any) -> str:
    if isinstance(got, BaseException):
        return f"raised {type(got).__name__}"
    return f"returned {got!r}"


CHECKS = {"watch": check_watch, "collect": check_collect}
