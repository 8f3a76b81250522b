"""The soak: thousands of real SDK calls through the chaos server on a bad day, every one
accounted for.

2,000 calls (sync and async clients, streaming and not, many at once) go through the chaos
server at ``bad-day`` on loopback. The SDK's retry sleeps run on a virtual clock (the real
delays are only the server's: slow first bytes, stalls and hangs, which cost a client its
short read timeout). Then every call is reconciled with the server's log:

* a call that returned has its request-id in the log with status 200, and it was its last
  attempt;
* a call that raised raised exactly the error its last logged attempt means (the SDK class
  of a status error with that request-id, ``APIStatusError`` for an error after a 200, the
  raw ``httpx2`` error for a stream that dropped or stalled, ...), and it raised only when
  the SDK had no retry left or the failure is not retried;
* the attempts the clients counted (an httpx2 event hook sees each request) equal the log's
  entries, call by call: nothing lost, nothing extra.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anthropic
import httpx2
import pytest

from resilience import MODEL, VirtualClock
from resilience.catalogue import ERRORS
from resilience.testing import sdk_on_clock
from resilience.testing.chaos import ChaosServer, Entry, Settings

pytestmark = pytest.mark.loopback

HI = [{"role": "user", "content": "Hi"}]
CALLS_PER_KIND = 1000  # sync and async: 2,000 calls in all
THREADS = 12
TASKS = 12
MAX_RETRIES = 2
READ_TIMEOUT = 1.0  # what a hung or stalled request costs, in real seconds
SEED = 7

# What the SDK raises when no answer came at all.
_TRANSPORT = {"timeout": anthropic.APITimeoutError,
              "connection_error": anthropic.APIConnectionError}


@dataclass(frozen=True, slots=True)
class Result:
    """What one call ended with."""

    tag: str
    stream: bool
    request_id: str | None = None  # set when it returned
    error: BaseException | None = None


class AttemptCounter:
    """Counts the HTTP requests a client sends, by their ``x-chaos-tag``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> None:
        with self._lock:
            self.counts[request.headers.get("x-chaos-tag", "")] += 1

    async def hook(self, request: httpx2.Request) -> None:
        self(request)


def _ask_sync(sdk: anthropic.Anthropic, tag: str, style: int) -> Result:
    headers = {"x-chaos-tag": tag}
    stream = style in (1, 2)
    try:
        if style == 1:
            with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI,
                                     extra_headers=headers) as events:
                events.get_final_message()
                return Result(tag, True, events.response.headers["request-id"])
        if style == 2:
            chunks = sdk.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True,
                                         extra_headers=headers)
            with chunks:
                assert [e.type for e in chunks][-1] == "message_stop"
                return Result(tag, True, chunks.response.headers["request-id"])
        message = sdk.messages.create(model=MODEL, max_tokens=64, messages=HI,
                                      extra_headers=headers)
        return Result(tag, False, message._request_id)
    except Exception as e:
        return Result(tag, stream, error=e)


async def _ask_async(sdk: anthropic.AsyncAnthropic, tag: str, style: int) -> Result:
    headers = {"x-chaos-tag": tag}
    stream = style in (1, 2)
    try:
        if style == 1:
            async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI,
                                           extra_headers=headers) as events:
                await events.get_final_message()
                return Result(tag, True, events.response.headers["request-id"])
        if style == 2:
            chunks = await sdk.messages.create(model=MODEL, max_tokens=64, messages=HI,
                                               stream=True, extra_headers=headers)
            async with chunks:
                assert [e.type async for e in chunks][-1] == "message_stop"
                return Result(tag, True, chunks.response.headers["request-id"])
        message = await sdk.messages.create(model=MODEL, max_tokens=64, messages=HI,
                                            extra_headers=headers)
        return Result(tag, False, message._request_id)
    except Exception as e:
        return Result(tag, stream, error=e)


def _run_async(url: str, counter: AttemptCounter) -> list[Result]:
    async def main() -> list[Result]:
        gate = asyncio.Semaphore(TASKS)
        http = httpx2.AsyncClient(event_hooks={"request": [counter.hook]})
        async with anthropic.AsyncAnthropic(base_url=url, api_key="unused",
                                            max_retries=MAX_RETRIES, timeout=READ_TIMEOUT,
                                            http_client=http) as sdk:

            async def one(i: int) -> Result:
                async with gate:
                    return await _ask_async(sdk, f"async-{i}", i % 4)

            return await asyncio.gather(*(one(i) for i in range(CALLS_PER_KIND)))

    return asyncio.run(main())


def _run_sync(url: str, counter: AttemptCounter) -> list[Result]:
    http = httpx2.Client(event_hooks={"request": [counter]})
    with anthropic.Anthropic(base_url=url, api_key="unused", max_retries=MAX_RETRIES,
                             timeout=READ_TIMEOUT, http_client=http) as sdk, \
            ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda i: _ask_sync(sdk, f"sync-{i}", i % 4),
                             range(CALLS_PER_KIND)))


@dataclass(frozen=True, slots=True)
class Soak:
    results: list[Result]
    entries: list[Entry]
    counted: Counter[str]


def run_soak(seed: int = SEED) -> Soak:
    """The whole soak: a bad-day chaos server, sync and async clients at once; its record."""
    settings = Settings(profile="bad-day", seed=seed, slow=0.05)
    counter = AttemptCounter()
    with ChaosServer(settings) as server, sdk_on_clock(VirtualClock(), random.Random(seed)):
        async_results: list[Result] = []
        runner = threading.Thread(target=lambda: async_results.extend(
            _run_async(server.url, counter)))
        runner.start()
        sync_results = _run_sync(server.url, counter)
        runner.join(timeout=300)
        assert not runner.is_alive(), "the async half of the soak did not finish"
        return Soak(sync_results + async_results, server.log.entries(), counter.counts)


@pytest.fixture(scope="module")
def soak() -> Soak:
    return run_soak()


def test_the_soak_made_2000_calls_of_every_kind(soak: Soak) -> None:
    assert len(soak.results) == 2 * CALLS_PER_KIND >= 2000
    kinds = Counter((r.tag.split("-")[0], r.stream) for r in soak.results)
    assert min(kinds.values()) >= CALLS_PER_KIND // 2 - 1 and len(kinds) == 4
    outcomes = Counter(entry.outcome for entry in soak.entries)
    faults = 1 - outcomes["ok"] / len(soak.entries)
    assert 0.2 < faults < 0.4, f"bad-day should fail about 30 % of attempts: {outcomes}"
    for fault in ("overloaded_error", "bad_gateway", "stream_overloaded_error",
                  "stream_dropped", "stream_stalled", "timeout", "connection_error"):
        assert outcomes[fault] > 0, f"the soak never met {fault}: {outcomes}"


def test_the_attempts_the_clients_counted_are_the_log_entries(soak: Soak) -> None:
    logged = Counter(entry.tag or "" for entry in soak.entries)
    assert sum(soak.counted.values()) == len(soak.entries)
    assert logged == soak.counted


def test_every_call_is_accounted_for_by_its_last_logged_attempt(soak: Soak) -> None:
    by_tag: dict[str, list[Entry]] = {}
    for entry in soak.entries:
        by_tag.setdefault(entry.tag or "", []).append(entry)
    problems = [problem for result in soak.results
                if (problem := _reconcile(result, by_tag.get(result.tag, []))) is not None]
    assert not problems, f"{len(problems)} calls do not reconcile, e.g. {problems[:5]}"
    returned = sum(result.error is None for result in soak.results)
    assert returned > 0.9 * len(soak.results)  # the SDK's retries ride out most faults


def _reconcile(result: Result, attempts: list[Entry]) -> str | None:
    """None if ``result`` is exactly what its attempts in the log imply; else what is wrong."""
    if not attempts:
        return f"{result.tag}: no attempt logged"
    if [a.retry_count for a in attempts] != list(range(len(attempts))):
        return f"{result.tag}: retry counts {[a.retry_count for a in attempts]}"
    if len(attempts) > MAX_RETRIES + 1:
        return f"{result.tag}: {len(attempts)} attempts, more than the SDK makes"
    last = attempts[-1]
    if any(a.stream != result.stream for a in attempts):
        return f"{result.tag}: logged stream flags differ from the call's"
    if result.error is None:
        if (last.status, last.outcome, last.request_id) != (200, "ok", result.request_id):
            return f"{result.tag}: returned {result.request_id}, but the last attempt was {last}"
        return None
    problem = _matches(result.error, last, result.stream)
    if problem is not None:
        return f"{result.tag}: {problem} (last attempt {last})"
    if _retried(last, result.stream) and len(attempts) != MAX_RETRIES + 1:
        return f"{result.tag}: raised after {len(attempts)} attempts with retries left"
    return None


def _matches(error: BaseException, last: Entry, stream: bool) -> str | None:
    """None if ``error`` is what the SDK raises for the attempt ``last``."""
    name = last.outcome
    failed_in_stream = stream and last.status == 200
    checks: list[tuple[bool, str]]
    if name.startswith("stream_") and name.removeprefix("stream_") in ERRORS and failed_in_stream:
        spec = ERRORS[name.removeprefix("stream_")]
        checks = [(type(error) is anthropic.APIStatusError, "an APIStatusError after a 200"),
                  (getattr(error, "status_code", None) == 200, "status 200"),
                  (getattr(error, "type", None) == spec.error_type, spec.error_type)]
    elif last.status is not None and last.status != 200:
        spec = ERRORS[name.removeprefix("stream_")] if name.startswith("stream_") else ERRORS[name]
        checks = [(type(error).__name__ == spec.sdk_class, spec.sdk_class),
                  (getattr(error, "request_id", None) == last.request_id, last.request_id),
                  (getattr(error, "status_code", None) == last.status, f"status {last.status}")]
    elif name == "stream_dropped":
        kind = httpx2.RemoteProtocolError if stream else anthropic.APIConnectionError
        checks = [(type(error) is kind, kind.__name__)]
    elif name == "stream_stalled":
        kind = httpx2.ReadTimeout if stream else anthropic.APITimeoutError
        checks = [(type(error) is kind, kind.__name__)]
    elif name in _TRANSPORT:
        checks = [(type(error) is _TRANSPORT[name], _TRANSPORT[name].__name__)]
    else:
        return f"raised {error!r}, but the last attempt was {name!r}"
    wrong = [want for ok, want in checks if not ok]
    return f"raised {type(error).__name__}: {error!s:.80}, expected {wrong}" if wrong else None


def _retried(last: Entry, stream: bool) -> bool:
    """Whether the SDK retries a failure like ``last`` (if it has retries left)."""
    if last.status is None:  # no answer: a timeout or a connection error
        return True
    if last.status == 200:  # the body failed: retried only when the SDK reads it in its loop
        return not stream
    return last.status in (408, 409, 429) or last.status >= 500


