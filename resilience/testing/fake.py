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

Inside the ``with`` block the SDK's own retry sleeps run on the virtual clock and its
jitter is seeded (see :mod:`resilience.testing.sdktime`), so the SDK's real schedule plays
out in zero wall time, the same way every run.
"""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anthropic
import httpx2
import respx

from ..clock import VirtualClock
from ..models import MODEL
from . import bridge
from .outcomes import Custom, Exchange, Outcome, Reply, outcome
from .scenarios import Scenario
from .sdktime import sdk_on_clock

__all__ = ["Call", "FakeClaude"]

_MESSAGES_PATH = "/v1/messages"


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
        with self._recording(exchange) as attempt:
            routed = (bridge.answer_from_router(self.router, request)
                      if self.router.routes else None)
            return attempt.deliver(exchange, self._choose(exchange, routed))

    async def handle_async(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request from an async client."""
        exchange = self._arrive(request)
        with self._recording(exchange) as attempt:
            routed = (await bridge.answer_from_router_async(self.router, request)
                      if self.router.routes else None)
            return attempt.deliver(exchange, self._choose(exchange, routed))

    # How one request is answered and recorded.

    def _require_open(self) -> None:
        if self._exits is None:
            raise RuntimeError("use the fake inside its block: `with FakeClaude() as api: ...`")

    def _arrive(self, request: httpx2.Request) -> Exchange:
        """Number the request, reserve its place in :attr:`calls`, note the time."""
        if self._exits is None:  # outside the block the SDK's retries would really sleep
            raise bridge.UnmatchedRequestError(
                f"{request.method} {request.url} reached a FakeClaude whose `with` block "
                "has ended: make requests inside the block")
        with self._lock:
            number = len(self.calls) + 1
            self.calls.append(_PENDING)
        return Exchange(request, number, f"req_fake_{number:06d}", self.clock.now(),
                        self.clock, _decode(request.content))

    @contextmanager
    def _recording(self, exchange: Exchange) -> Iterator[_Attempt]:
        """Record the attempt as a :class:`Call` once it is answered, or has failed."""
        attempt = _Attempt()
        try:
            yield attempt
        finally:
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
        if request.method != "POST" or request.url.path != _MESSAGES_PATH:
            raise bridge.UnmatchedRequestError(
                f"No route matched {request.method} {request.url}: the simulated API answers "
                f"POST {_MESSAGES_PATH}; add a route on api.router for anything else.")
        with self._lock:
            if self._script:
                return self._script.popleft()
            for scenario in self._scenarios:
                decided = scenario.decide(exchange, self._scenario_rng)
                if decided is not None:
                    return decided
        return _SUCCESS


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


_SUCCESS = Reply()
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
