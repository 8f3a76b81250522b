"""``FakeClaude``: the simulated Claude API that answers the real anthropic SDK.

::

    from resilience import VirtualClock
    from resilience.testing import FakeClaude

    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.respond("overloaded_error", "ok")
        message = api.client().messages.create(
            model=api.model, max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
        for call in api.calls:
            print(call)    # t=0.000s retry 0 -> 529 overloaded_error, then 200 ok

Each request is answered by the first of:

1. your respx routes on :attr:`FakeClaude.router`, if one matches;
2. the script: the next outcome queued with :meth:`FakeClaude.respond`;
3. the scenarios added with :meth:`FakeClaude.scenario`, in order;
4. success (``"ok"``), for ``POST /v1/messages``; any other request raises
   :class:`~resilience.testing.bridge.UnmatchedRequestError` at once.

``POST /v1/messages/count_tokens`` (``client.messages.count_tokens(...)``) is answered
after your routes, never from the script or the scenarios: ``{"input_tokens": N}``, the
same estimate a reply's ``usage.input_tokens`` and
:class:`~resilience.testing.scenarios.RateLimited` use
(:func:`~resilience.testing.responses.estimate_tokens` of the messages).

Inside the ``with`` block the SDK's own retry sleeps run on the virtual clock and its
jitter is seeded (see :mod:`resilience.testing.sdktime`), so the SDK's real schedule plays
out in zero wall time, the same way every run.

Many async clients at once: run them with :meth:`FakeClaude.run`, on a
:class:`~resilience.testing.aio.VirtualTimeLoop` whose time is the fake's clock. Every
task's retry sleeps are then timers that wake in virtual-time order, and a slow answer or a
timeout (:class:`~resilience.testing.scenarios.Slow`, ``"timeout"``) delays only its own
request instead of moving the clock for everyone.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
from collections import deque
from collections.abc import Coroutine, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import anthropic
import httpx2
import respx

from ..clock import VirtualClock
from ..models import MODEL
from . import aio, bridge, responses
from .outcomes import Custom, Exchange, Outcome, Reply, error, outcome
from .scenarios import Scenario
from .sdktime import sdk_on_clock

__all__ = ["Call", "FakeClaude"]

_MESSAGES_PATH = "/v1/messages"
_COUNT_TOKENS_PATH = "/v1/messages/count_tokens"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP attempt the SDK made, as the simulated API saw it.

    Attributes:
        number: 1 for the first request the fake received, 2 for the next, ...
        time: the virtual time at which it arrived, in seconds.
        status: the HTTP status answered (200 for a stream, even one that failed midway),
            or None when no answer came (timeout, connection failure).
        retry_count: the SDK's ``x-stainless-retry-count`` (0 for a first attempt), or None
            if the request did not carry it.
        request_id: the ``request-id`` of the answer.
        outcome: what the fake did (``"ok"``, an error name, ``"timeout"``, ``"route"`` for
            an answer from your respx routes, ...).
        method: the HTTP method.
        path: the URL path, e.g. ``/v1/messages``.
        stream: whether the request asked for a stream.
        model: the model the request asked for (its body's ``model``), or None when the
            body named none.
    """

    number: int
    time: float
    status: int | None
    retry_count: int | None
    request_id: str
    outcome: str
    method: str = "POST"
    path: str = _MESSAGES_PATH
    stream: bool = False
    model: str | None = None

    def __str__(self) -> str:
        status = "no answer" if self.status is None else str(self.status)
        return (f"t={self.time:.3f}s retry {self.retry_count} -> {status} {self.outcome} "
                f"({self.request_id})")


class FakeClaude:
    """The simulated Claude API, as a context manager; see the module docstring.

    Args:
        clock: the virtual clock requests and the SDK's sleeps run on (a new
            ``VirtualClock()`` if None; read it back as :attr:`clock`).
        seed: seeds the SDK's jitter and the scenarios' draws.

    Attributes:
        clock: the virtual clock.
        seed: the seed.
        router: a ``respx.Router`` (base URL ``https://api.anthropic.com``): routes you add
            here answer before the script, e.g.
            ``api.router.post("/v1/messages").mock(side_effect=[httpx.Response(529), ok])``.
        calls: every attempt the SDK made, in order (:class:`Call`).
        model: the project's current model id (:data:`resilience.models.MODEL`).
    """

    model = MODEL

    def __init__(self, clock: VirtualClock | None = None, seed: int = 0) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        self.seed = seed
        self.router = respx.Router(base_url=bridge.API_URL, assert_all_called=False)
        self.calls: list[Call] = []
        self._script: deque[Outcome] = deque()
        self._scenarios: list[Scenario] = []
        self._scenario_rng = random.Random(f"fakeapi-scenarios-{seed}")
        self._lock = threading.Lock()
        self._exits: ExitStack | None = None

    # The context: the SDK's sleeps and jitter move to the clock while it is open.

    def __enter__(self) -> FakeClaude:
        if self._exits is not None:
            raise RuntimeError("this FakeClaude is already open")
        with ExitStack() as exits:
            exits.enter_context(sdk_on_clock(self.clock, random.Random(self.seed)))
            self._exits = exits.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        exits, self._exits = self._exits, None
        if exits is not None:
            exits.close()

    # What learners call.

    def client(self, **kwargs: Any) -> anthropic.Anthropic:
        """A real ``anthropic.Anthropic`` client answered by this fake.

        Args:
            **kwargs: passed to ``anthropic.Anthropic`` (``max_retries``, ``timeout``, ...).

        Returns:
            The client. Example: ``api.client(max_retries=10).messages.create(...)``.
        """
        self._require_open()
        return bridge.client_with_handler(self.handle, **kwargs)

    def async_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """A real ``anthropic.AsyncAnthropic`` client answered by this fake."""
        self._require_open()
        return bridge.async_client_with_handler(self.handle_async, **kwargs)

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to completion on a virtual-time event loop on this fake's clock.

        Concurrent tasks (``asyncio.gather`` of many ``async_client()`` calls) then sleep on
        timers of one virtual clock and wake in time order; see :mod:`~.aio`. No real time
        passes. Example: ``api.run(asyncio.gather(*(ask(i) for i in range(1000))))``.

        Args:
            main: a coroutine (or an awaitable such as ``asyncio.gather(...)`` built inside
                one: wrap it in ``async def``).

        Returns:
            What ``main`` returns.
        """
        self._require_open()
        return aio.run(main, clock=self.clock)

    def respond(self, *outcomes: object, headers: Mapping[str, str] | None = None) -> None:
        """Queue outcomes, one per request, after any already queued.

        Args:
            *outcomes: names (``"ok"``, ``"overloaded_error"``, ``"timeout"``,
                ``"connection_error"``, ``"stream_overloaded"``, ...), outcome objects
                (``error("rate_limit_error", retry_after=3)``), or responses, exceptions
                and side effects; see :mod:`resilience.testing.outcomes`.
            headers: extra headers for each of these outcomes' responses.

        When the queue is empty, the scenarios decide, and then the answer is ``"ok"``.
        """
        queued = [outcome(value) for value in outcomes]  # every name is checked first
        if headers:
            queued = [item.with_headers(headers) for item in queued]
        with self._lock:
            self._script.extend(queued)

    def raised(self, *outcomes: object, **client_options: Any) -> anthropic.APIError | None:
        """Send one ``messages.create`` answered by ``outcomes``; return what the SDK raised.

        The quickest way to meet an error as your code would: ``api.raised("billing_error")``
        is the real ``PaymentRequiredError`` the SDK raises for a 402.

        Args:
            *outcomes: queued first, as with :meth:`respond` (one per attempt the SDK makes).
            **client_options: for :meth:`client`; ``max_retries`` defaults to 0 here.

        Returns:
            The ``anthropic.APIError`` raised, or None if the request succeeded.
        """
        self.respond(*outcomes)
        client_options.setdefault("max_retries", 0)
        try:
            self.client(**client_options).messages.create(
                model=self.model, max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
        except anthropic.APIError as e:
            return e
        return None

    def scenario(self, *scenarios: Scenario) -> None:
        """Add scenarios (``FailureRates``, ``ForModel``, ``Outage``, ``RateLimited``, ``Slow``,
        or any object with a ``decide`` method), in order."""
        with self._lock:
            self._scenarios.extend(scenarios)

    @property
    def pending(self) -> tuple[str, ...]:
        """The labels of the queued outcomes no request has used yet."""
        with self._lock:
            return tuple(item.label for item in self._script)

    # The transport handlers the SDK's httpx2 client calls.

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request from a sync client (the ``httpx2.MockTransport`` handler)."""
        exchange = self._arrive(request)
        attempt = _Attempt()
        try:
            routed = (bridge.answer_from_router(self.router, request)
                      if self.router.routes else None)
            return attempt.deliver(exchange, self._choose(exchange, routed))
        finally:
            self._record(exchange, attempt)

    async def handle_async(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request from an async client.

        On a :class:`~.aio.VirtualTimeLoop` on this fake's clock, the latency an outcome or
        scenario adds (``clock.advance``) is awaited as a timer for this request alone.
        """
        loop = asyncio.get_running_loop()
        latency = (_Latency(self.clock)
                   if isinstance(loop, aio.VirtualTimeLoop) and loop.clock is self.clock
                   else None)
        exchange = self._arrive(request, latency)
        attempt = _Attempt()
        try:
            routed = (await bridge.answer_from_router_async(self.router, request)
                      if self.router.routes else None)
            try:
                return attempt.deliver(exchange, self._choose(exchange, routed))
            finally:
                if latency is not None:  # the answer (or failure) takes its time
                    await latency.wait()
        finally:
            self._record(exchange, attempt)

    # How one request is answered and recorded.

    def _require_open(self) -> None:
        if self._exits is None:
            raise RuntimeError("use the fake inside its block: `with FakeClaude() as api: ...`")

    def _arrive(self, request: httpx2.Request, clock: VirtualClock | None = None) -> Exchange:
        """Number the request, reserve its place in :attr:`calls`, note the time."""
        if self._exits is None:  # outside the block the SDK's retries would really sleep
            raise bridge.UnmatchedRequestError(
                f"{request.method} {request.url} reached a FakeClaude whose `with` block "
                "has ended: make requests inside the block")
        with self._lock:
            number = len(self.calls) + 1
            self.calls.append(_PENDING)
        clock = self.clock if clock is None else clock
        return Exchange(request, number, f"req_fake_{number:06d}", clock.now(), clock,
                        _decode(request.content))

    def _record(self, exchange: Exchange, attempt: _Attempt) -> None:
        """Record the attempt as a :class:`Call` once it is answered, or has failed."""
        request = exchange.request
        call = Call(exchange.number, exchange.arrived, attempt.status,
                    _retry_count(request), exchange.request_id, attempt.label,
                    request.method, request.url.path, exchange.stream,
                    exchange.requested_model)
        with self._lock:
            self.calls[exchange.number - 1] = call

    def _choose(self, exchange: Exchange, routed: httpx2.Response | None) -> Outcome:
        """Your route's answer, else the script's next outcome, else the scenarios'."""
        if routed is not None:
            return Custom(routed, label="route")
        request = exchange.request
        if request.method == "POST" and request.url.path == _COUNT_TOKENS_PATH:
            return _count_tokens(exchange)
        if request.method != "POST" or request.url.path != _MESSAGES_PATH:
            raise bridge.UnmatchedRequestError(
                f"No route matched {request.method} {request.url}: the simulated API answers "
                f"POST {_MESSAGES_PATH} and POST {_COUNT_TOKENS_PATH}; add a route on "
                "api.router for anything else.")
        with self._lock:
            if self._script:
                return self._script.popleft()
            for scenario in self._scenarios:
                decided = scenario.decide(exchange, self._scenario_rng)
                if decided is not None:
                    return decided
        return _SUCCESS


class _Latency(VirtualClock):
    """The clock one async request sees on a virtual loop: its advances are its own latency.

    ``now()`` is the shared clock's time plus the latency so far; ``advance(s)`` (what
    ``Slow`` and ``Timeout`` call) adds to the latency instead of moving the shared clock;
    :meth:`wait` then sleeps it on the loop, so other requests go on meanwhile. Once the
    answer has left (a stream that stalls while the SDK reads its body), advances move the
    shared clock, as they do for a single task.
    """

    __slots__ = ("_settled", "_shared", "latency")

    def __init__(self, shared: VirtualClock) -> None:
        super().__init__()
        self._shared = shared
        self._settled = False
        self.latency = 0.0

    def now(self) -> float:
        return self._shared.now() if self._settled else self._shared.now() + self.latency

    def advance(self, seconds: float) -> None:
        if self._settled:
            self._shared.advance(seconds)
            return
        if not 0 <= seconds < math.inf:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        self.latency += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    async def wait(self) -> None:
        """Sleep the latency on the running (virtual) loop; later advances are shared."""
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            self._settled = True

    def __repr__(self) -> str:
        return f"<request clock: {self._shared!r} + {self.latency!r} s>"


class _Attempt:
    """What is known about an attempt while it is being answered."""

    __slots__ = ("label", "status")

    def __init__(self) -> None:
        self.label = "unmatched"
        self.status: int | None = None

    def deliver(self, exchange: Exchange, chosen: Outcome) -> httpx2.Response:
        """Let ``chosen`` answer, add the headers every response carries, note the status."""
        self.label = chosen.label
        response = chosen.answer(exchange)
        for extra in (chosen.headers, exchange.headers):
            if extra:  # (updating httpx2 headers is not free: skip it when there is nothing)
                response.headers.update(extra)
        if "request-id" not in response.headers:
            response.headers["request-id"] = exchange.request_id
        self.status = response.status_code
        return response


@dataclass(frozen=True, slots=True)
class _Counted(Outcome):
    """``count_tokens``' answer: ``{"input_tokens": N}``, the estimate replies use."""

    headers: Mapping[str, str] = field(default_factory=dict)
    label = "ok"

    def answer(self, exchange: Exchange) -> httpx2.Response:
        body = {"input_tokens": responses.estimate_tokens(exchange.prompt)}
        return responses.message_response(body, exchange.request_id)


def _count_tokens(exchange: Exchange) -> Outcome:
    """The answer to ``count_tokens``; without ``messages``, the API's 400."""
    messages = exchange.body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error("invalid_request_error",
                     message="messages: field required (a non-empty list)")
    return _COUNTED


_SUCCESS = Reply()
_COUNTED = _Counted()
_PENDING = Call(0, 0.0, None, None, "", "pending")


def _decode(content: bytes) -> Mapping[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_count(request: httpx2.Request) -> int | None:
    value = request.headers.get("x-stainless-retry-count")
    return int(value) if value is not None and value.isdigit() else None
