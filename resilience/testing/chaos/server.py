"""The chaos server: the simulated Claude API over real HTTP, failing on purpose.

:class:`ChaosApp` is an ASGI application (Starlette) answering ``POST /v1/messages`` (JSON,
or SSE with ``"stream": true``) and ``POST /v1/messages/count_tokens`` like the Claude API,
with the faults of a profile (:mod:`.profiles`). Every fault is an outcome object from
:mod:`resilience.testing.outcomes`, chosen by the scenarios of
:mod:`resilience.testing.scenarios`: the same objects ``FakeClaude`` uses, so a 529, a 429
with its ``retry-after`` or a stream that drops mid-body are byte for byte the same here and
in a unit test. The server only plays them out on a real connection:

* a response is sent as the outcome built it: status, headers (``request-id``, the
  ``anthropic-ratelimit-*`` headers, an error's own headers) and body;
* an outcome that raises an ``httpx2`` transport error (a connection error, a timeout, a
  connection dropped mid-body) closes the connection at that point, sending nothing more;
* time: each request sees a clock whose ``now()`` is real time since the server started
  (an outage plays out in real seconds) and whose ``advance(s)`` (a slow answer, a stall,
  a timeout) the server then pays in real time before the next byte. After a timeout it
  stays silent a little past the client's read timeout (``x-stainless-read-timeout``), so
  the client's own timeout fires first, and stops waiting as soon as the client hangs up.

:class:`ChaosServer` runs the app with uvicorn in a background thread (for tests and
benchmarks); :func:`serve` runs it in the foreground (the command line). Both bind loopback
unless told otherwise. The API key is never needed, read or logged: the server drops the
``x-api-key`` and ``authorization`` headers before anything else sees the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import socket
import threading
import time
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from ...catalogue import ERRORS
from ...clock import VirtualClock
from .. import responses
from ..outcomes import Exchange, Outcome, error, ok
from ..scenarios import Scenario
from .log import ChaosLog, Entry
from .profiles import Settings

__all__ = ["ChaosApp", "ChaosServer", "RequestClock", "serve"]

_MESSAGES = "/v1/messages"
_COUNT_TOKENS = "/v1/messages/count_tokens"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization"})
_SUCCESS = ok()

Connections = MutableMapping[tuple[str, int], asyncio.BaseTransport]
"""Open connections by the client's address, as the ASGI scope's ``client`` names it."""


class RequestClock(VirtualClock):
    """The clock one request sees: real time since the server's origin, plus its delays.

    ``now()`` is ``time.monotonic() - origin`` plus the delay owed; ``advance(s)`` (what a
    slow answer, a stall or a timeout calls) adds ``s`` to the delay owed instead of
    blocking the server; the server pays it with :meth:`settle` before its next byte.

    Args:
        origin: the ``time.monotonic()`` reading that is time 0 (the server's start).
    """

    __slots__ = ("_origin", "owed")

    def __init__(self, origin: float) -> None:
        super().__init__()
        self._origin = origin
        self.owed = 0.0

    def now(self) -> float:
        """Seconds since the origin, plus the delay not yet paid."""
        return time.monotonic() - self._origin + self.owed

    def advance(self, seconds: float) -> None:
        """Owe ``seconds`` (>= 0) more of delay."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self.owed += seconds

    def sleep(self, seconds: float) -> None:
        """Owe ``seconds`` more of delay (the server pays it; nothing blocks here)."""
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time."""
        await asyncio.sleep(seconds)

    def settle(self) -> float:
        """The delay owed, now to be paid; the debt starts again from zero."""
        owed, self.owed = self.owed, 0.0
        return owed


class ChaosApp:
    """The simulated API's state and its ASGI application (:attr:`asgi`).

    Args:
        settings: the profile, its rates and real delays (default: ``calm``, seed 0).
        scenarios: scenarios to use instead of the profile's (any ``FakeClaude`` scenario;
            kept as they are across :meth:`reset`).

    Attributes:
        settings: the settings.
        log: one :class:`~.log.Entry` per attempt received, in order.
        asgi: the Starlette application to run with any ASGI server (the faults that close
            a connection need :class:`ChaosServer`'s or :func:`serve`'s uvicorn protocol).
    """

    def __init__(self, settings: Settings | None = None, *,
                 scenarios: Sequence[Scenario] | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.initial_settings = self.settings
        self.log = ChaosLog()
        self.connections: Connections = {}
        self._given = None if scenarios is None else list(scenarios)
        self._set_origin()
        self._number = 0
        self._scenarios = self._fresh_scenarios()
        self._rng = _rng(self.settings.seed)
        self.asgi = Starlette(
            routes=[
                Route(_MESSAGES, self._messages, methods=["POST"]),
                Route(_COUNT_TOKENS, self._count_tokens, methods=["POST"]),
                Route("/_chaos/log", self._log, methods=["GET"]),
                Route("/_chaos/reset", self._reset, methods=["POST"]),
            ],
            exception_handlers={HTTPException: self._http_error},
            lifespan=self._lifespan,
        )
        self.on_startup: list[Callable[[], None]] = []

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: object) -> AsyncIterator[None]:
        self._set_origin()  # time 0 is when the server starts serving
        for callback in self.on_startup:
            callback()
        yield

    def reset(self, settings: Settings | None = None) -> None:
        """Start over: clear the log, restart time, the numbering and the profile's draws.

        From another thread than the server's, call it between requests (a test does).

        Args:
            settings: new settings to start over with (scenarios given to the constructor
                are then dropped for the new profile's); None keeps the current ones.
        """
        if settings is not None:
            self.settings, self._given = settings, None
        self.log.clear()
        self._set_origin()
        self._number = 0
        self._scenarios = self._fresh_scenarios()
        self._rng = _rng(self.settings.seed)

    def _set_origin(self) -> None:
        self._origin = time.monotonic()
        self._wall_origin = datetime.now(UTC)

    def _fresh_scenarios(self) -> list[Scenario]:
        return self.settings.scenarios() if self._given is None else self._given

    # The API's endpoints.

    async def _messages(self, request: Request) -> Response:
        exchange, problem = await self._arrive(request)
        chosen = _malformed(problem) if problem is not None else self._choose(exchange)
        return self._answer(request, exchange, chosen)

    async def _count_tokens(self, request: Request) -> Response:
        exchange, problem = await self._arrive(request, count_tokens=True)
        if problem is not None:
            return self._answer(request, exchange, _malformed(problem))
        tokens = responses.estimate_tokens(exchange.prompt)
        body = json.dumps({"input_tokens": tokens}).encode()
        counted = _Counted(httpx2.Response(200, headers={"content-type": "application/json"},
                                           content=body))
        return self._answer(request, exchange, counted)

    # The control endpoints.

    async def _log(self, request: Request) -> Response:
        return JSONResponse(self.log.to_json())

    async def _reset(self, request: Request) -> Response:
        """Start over. A JSON object in the body sets new settings first: the server's
        start-up settings with these changes, e.g. ``{"faults": {"overloaded_error": 1}}``
        (field names of :class:`~.profiles.Settings`). An empty body keeps the settings."""
        raw = await request.body()
        settings = None
        if raw.strip():
            try:
                changes = json.loads(raw)
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of settings")
                unknown = sorted(set(changes) - set(Settings.__dataclass_fields__))
                if unknown:
                    raise ValueError(f"unknown settings {unknown}; the settings are "
                                     f"{', '.join(Settings.__dataclass_fields__)}")
                settings = replace(self.initial_settings, **changes)
            except (ValueError, TypeError) as e:
                spec = ERRORS["invalid_request_error"]
                body = replace(spec, message=str(e)).body(f"req_chaos_reset_{self._number}")
                return JSONResponse(body, status_code=400)
        self.reset(settings)
        return JSONResponse({"reset": True, "settings": _settings_json(self.settings)})

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        """Unknown paths and methods get the API's JSON error shape (and a log entry)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        name = "not_found_error" if status == 404 else "invalid_request_error"
        spec = replace(ERRORS[name], status=status,
                       message=f"{request.method} {request.url.path}: no such endpoint")
        request_id = self._next_id()
        answered = responses.error_response(spec, request_id)
        self.log.add(Entry(self._number, time.monotonic() - self._origin, request_id,
                           _int_header(request.headers.get("x-stainless-retry-count")), status,
                           name, False, request.method, request.url.path,
                           tag=request.headers.get("x-chaos-tag")))
        return Response(answered.content, status_code=status,
                        headers=dict(answered.headers.items()))

    # How one attempt is answered.

    def _next_id(self) -> str:
        self._number += 1
        return f"req_chaos_{self._number:06d}"

    async def _arrive(self, request: Request, *,
                      count_tokens: bool = False) -> tuple[Exchange, str | None]:
        raw = await request.body()
        body, problem = _parse(raw, count_tokens=count_tokens)
        headers = [(k, v) for k, v in request.headers.items() if k not in _SECRET_HEADERS]
        read = _declared_read_timeout(request.headers) or self.settings.hang
        sent = httpx2.Request(request.method, str(request.url), headers=headers, content=raw,
                              extensions={"timeout": {"read": read}})
        clock = RequestClock(self._origin)
        request_id = self._next_id()
        return Exchange(sent, self._number, request_id, clock.now(), clock, body), problem

    def _choose(self, exchange: Exchange) -> Outcome:
        for scenario in self._scenarios:
            decided = scenario.decide(exchange, self._rng)
            if decided is not None:
                return decided
        return _SUCCESS

    def _answer(self, request: Request, exchange: Exchange, chosen: Outcome) -> Response:
        """Let ``chosen`` answer, log the attempt, and return the ASGI response to play."""
        failure: httpx2.TransportError | None = None
        answered: httpx2.Response | None = None
        try:
            answered = chosen.answer(exchange)
        except httpx2.TransportError as e:
            failure = e
        else:
            for extra in (chosen.headers, exchange.headers):
                answered.headers.update(extra)
            answered.headers.setdefault("request-id", exchange.request_id)
            _to_real_calendar(answered.headers, self._wall_origin)
            pause = self.settings.retry_after_ms
            if pause is not None and answered.status_code >= 400:
                answered.headers["retry-after-ms"] = f"{pause:g}"
        clock = exchange.clock
        assert isinstance(clock, RequestClock)
        self.log.add(Entry(
            number=exchange.number,
            time=exchange.arrived,
            request_id=exchange.request_id,
            retry_count=_int_header(request.headers.get("x-stainless-retry-count")),
            status=None if answered is None else answered.status_code,
            outcome=chosen.label,
            stream=exchange.stream,
            method=request.method,
            path=request.url.path,
            model=exchange.requested_model,
            delay=clock.owed,
            tag=request.headers.get("x-chaos-tag"),
        ))
        return _Played(answered, failure, clock, self.connections)


class _Counted(Outcome):
    """``count_tokens``' answer, as an outcome so it is logged and sent like the others."""

    __slots__ = ("_response",)
    label = "ok"
    headers: Mapping[str, str] = {}

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    def answer(self, exchange: Exchange) -> httpx2.Response:
        return self._response


_RESETS = ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
           "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-reset")
_DATE = "%Y-%m-%dT%H:%M:%SZ"


def _to_real_calendar(headers: httpx2.Headers, wall_origin: datetime) -> None:
    """Move the rate-limit reset dates from the scenarios' virtual calendar (time 0 is
    :data:`~resilience.testing.responses.VIRTUAL_EPOCH`) to the real one (time 0 is when
    the server started), so a client that parses them sees honest dates."""
    for name in _RESETS:
        value = headers.get(name)
        if value is None:
            continue
        try:
            moment = datetime.strptime(value, _DATE).replace(tzinfo=UTC)
        except ValueError:
            continue
        headers[name] = (wall_origin + (moment - responses.VIRTUAL_EPOCH)).strftime(_DATE)


def _settings_json(settings: Settings) -> dict[str, Any]:
    return {name: (dict(value) if isinstance(value, Mapping) else value)
            for name, value in ((f, getattr(settings, f))
                                for f in Settings.__dataclass_fields__)}


def _rng(seed: int) -> random.Random:
    return random.Random(f"chaos-{seed}")


def _malformed(problem: str) -> Outcome:
    return error("invalid_request_error", message=problem)


def _int_header(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _declared_read_timeout(headers: Mapping[str, str]) -> float | None:
    """The client's read timeout in seconds, as the SDKs declare it (None if none)."""
    for name in ("x-stainless-read-timeout", "x-stainless-timeout"):
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            continue
        if 0 < value < math.inf:
            return value
    return None


def _parse(raw: bytes, *, count_tokens: bool) -> tuple[dict[str, Any], str | None]:
    """The JSON body and the first problem with it (None: well formed), as the API words it."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {}, "The request body is not valid JSON."
    if not isinstance(body, dict):
        return {}, "The request body must be a JSON object."
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return body, "model: field required"
    if not count_tokens:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            return body, "max_tokens: field required (an integer)"
        if max_tokens < 1:
            return body, f"max_tokens: must be at least 1, got {max_tokens}"
        if "stream" in body and not isinstance(body["stream"], bool):
            return body, "stream: must be a boolean"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return body, "messages: field required (a non-empty list)"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return body, f"messages.{i}.role: must be 'user' or 'assistant'"
        if not isinstance(message.get("content"), str | list):
            return body, f"messages.{i}.content: field required"
    return body, None


class _Played(Response):
    """Plays one answer out on the connection: its delays, its bytes, its failure.

    A Starlette response with its own ``__call__`` (as ``StreamingResponse`` has): the body
    comes from the outcome's ``httpx2`` stream, chunk by chunk, paying the request clock's
    delays before each; a transport error from the outcome closes the connection there.
    """

    def __init__(self, answered: httpx2.Response | None, failure: httpx2.TransportError | None,
                 clock: RequestClock, connections: Connections) -> None:
        super().__init__(status_code=200 if answered is None else answered.status_code)
        self._answered = answered
        self._failure = failure
        self._clock = clock
        self._connections = connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hung_up = asyncio.Event()
        watcher = asyncio.ensure_future(_watch(receive, hung_up))
        try:
            await self._play(scope, send, hung_up)
        finally:
            watcher.cancel()

    async def _play(self, scope: Scope, send: Send, hung_up: asyncio.Event) -> None:
        if await _pause(self._clock.settle(), hung_up):
            return
        answered = self._answered
        if answered is None:
            await self._fail(scope, self._failure, hung_up)
            return
        await send({"type": "http.response.start", "status": answered.status_code,
                    "headers": _raw_headers(answered.headers)})
        chunks = _chunks(answered)
        while True:
            try:
                chunk = next(chunks, None)
            except httpx2.TransportError as failure:
                await self._fail(scope, failure, hung_up)
                return
            if await _pause(self._clock.settle(), hung_up):
                return
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _fail(self, scope: Scope, failure: BaseException | None,
                    hung_up: asyncio.Event) -> None:
        """Close the connection; after a timeout, only once the client's own has fired."""
        waited = self._clock.settle()
        if isinstance(failure, httpx2.TimeoutException):
            waited += _GRACE + 0.1 * waited
        if await _pause(waited, hung_up):
            return
        client = scope.get("client")
        transport = self._connections.get((str(client[0]), int(client[1]))) if client else None
        if transport is None:  # not our uvicorn protocol: let the server close it
            raise ConnectionAbortedError("chaos: closing the connection")
        transport.close()
        await _pause(_GRACE, hung_up)  # the server sees the hang-up: no 500 is sent after


_GRACE = 0.5
"""Seconds a timed-out request stays open past the client's read timeout (and the longest
the server waits to see a connection it closed go)."""


def _chunks(answered: httpx2.Response) -> Iterator[bytes]:
    yield from answered.stream  # type: ignore[misc]


def _raw_headers(headers: httpx2.Headers) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.multi_items() if name.lower() != "transfer-encoding"]


async def _watch(receive: Receive, hung_up: asyncio.Event) -> None:
    """Set ``hung_up`` when the client disconnects (the request body is already read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            hung_up.set()
            return


async def _pause(seconds: float, hung_up: asyncio.Event) -> bool:
    """Wait ``seconds`` of real time, less if the client hangs up; True if it did."""
    if hung_up.is_set():
        return True
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(hung_up.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


# Running it: uvicorn, with a protocol that lets the app close a connection on purpose.


def _protocol(connections: Connections) -> type[H11Protocol]:
    """uvicorn's h11 protocol, recording each open connection's transport by client address.

    ASGI has no way to drop a connection without a response (uvicorn sends a 500 instead),
    so the app looks the transport up here (by the scope's ``client``) and closes it.
    """

    class ChaosProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            if peer:
                connections[(str(peer[0]), int(peer[1]))] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            transport = getattr(self, "transport", None)
            peer = transport.get_extra_info("peername") if transport is not None else None
            if peer:
                connections.pop((str(peer[0]), int(peer[1])), None)
            super().connection_lost(exc)

    return ChaosProtocol


def _config(app: ChaosApp, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(app.asgi, http=_protocol(app.connections), lifespan="on",
                          access_log=False, log_level=log_level, timeout_graceful_shutdown=2,
                          server_header=False)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one the system picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every reply (headers, then body) waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 0,
          announce: Callable[[str], None] = print) -> None:
    """Run the chaos server in the foreground until Ctrl-C (SIGINT) or SIGTERM.

    Args:
        settings: the profile and its rates.
        host: the address to bind (loopback unless you say otherwise).
        port: the port (0: a free one).
        announce: called once with the server's URL when it accepts requests.
    """
    app = ChaosApp(settings)
    sock = bind(host, port)
    url = url_of(sock)
    app.on_startup.append(lambda: announce(url))
    server = uvicorn.Server(_config(app))
    with sock:
        server.run(sockets=[sock])


class ChaosServer:
    """The chaos server in a background thread, as a context manager (tests, benchmarks).

    ::

        with ChaosServer(Settings(profile="bad-day", seed=1)) as chaos:
            client = anthropic.Anthropic(base_url=chaos.url, api_key="unused")
            ...
            chaos.log.entries()      # every attempt, in order

    Args:
        settings: the profile and its rates (default ``calm``).
        scenarios: scenarios to use instead of the profile's (see :class:`ChaosApp`).
        host: the address to bind (default loopback).
        port: the port (default 0: a free one; read it back from :attr:`url`).

    Attributes:
        app: the :class:`ChaosApp` (its :attr:`~ChaosApp.log`, :meth:`~ChaosApp.reset`).
        url: ``http://127.0.0.1:PORT`` once started.
    """

    def __init__(self, settings: Settings | None = None, *,
                 scenarios: Sequence[Scenario] | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.app = ChaosApp(settings, scenarios=scenarios)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @property
    def log(self) -> ChaosLog:
        """The log of every attempt received."""
        return self.app.log

    def reset(self, settings: Settings | None = None) -> None:
        """Clear the log and start over, with new ``settings`` if given (as
        ``POST /_chaos/reset`` does)."""
        self.app.reset(settings)

    def __enter__(self) -> ChaosServer:
        if self._thread is not None:
            raise RuntimeError("this ChaosServer is already running")
        sock = bind(self._host, self._port)
        self.url = url_of(sock)
        ready = threading.Event()
        self.app.on_startup.append(ready.set)
        server = uvicorn.Server(_config(self.app))
        thread = threading.Thread(target=self._run, args=(server, sock), daemon=True,
                                  name="chaos-server")
        self._server, self._thread = server, thread
        thread.start()
        if not ready.wait(timeout=30):
            self.__exit__(None, None, None)
            raise RuntimeError("the chaos server did not start within 30 s")
        return self

    @staticmethod
    def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        with sock:
            server.run(sockets=[sock])

    def __exit__(self, *exc_info: object) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=30)
