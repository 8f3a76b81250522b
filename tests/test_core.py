"""Package-wide promises: a light core, a current model id, a virtual clock that is exact."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import typing
import warnings

import anthropic
import pytest
from anthropic._data.deprecated_models import DEPRECATED_MODELS

import resilience
from resilience import FALLBACK_MODEL, MODEL, SystemClock, VirtualClock
from resilience.testing import TurnClock


def test_import_resilience_pulls_in_no_heavy_modules() -> None:
    code = ("import sys, resilience; heavy = {'numpy', 'matplotlib', 'anthropic', 'httpx2', "
            "'respx'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("model", [MODEL, FALLBACK_MODEL])
def test_model_ids_are_current_in_the_installed_sdk(model: str) -> None:
    assert model not in DEPRECATED_MODELS
    assert model in typing.get_args(typing.get_args(anthropic.types.ModelParam)[0])


def test_the_sdk_does_not_warn_about_our_model() -> None:
    import httpx2

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}})

    client = anthropic.Anthropic(api_key="test-key-not-real", max_retries=0,
                                 http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.messages.create(model=MODEL, max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])


def test_public_names_are_exported() -> None:
    for name in resilience.__all__:
        assert hasattr(resilience, name), name


def test_virtual_clock_moves_only_when_told_and_records_sleeps() -> None:
    clock = VirtualClock(start=5.0)
    assert clock.now() == 5.0
    clock.sleep(1.5)
    clock.advance(0.5)
    asyncio.run(clock.asleep(2.0))
    assert (clock.now(), clock.sleeps) == (9.0, [1.5, 2.0])
    with pytest.raises(ValueError, match="sleep length must be a finite number of seconds >= 0"):
        clock.sleep(-1)
    with pytest.raises(ValueError, match="start must be a finite number"):
        VirtualClock(start=float("nan"))


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), -0.5])
def test_virtual_clock_refuses_sleeps_and_advances_that_are_not_finite_and_positive(
        seconds: float) -> None:
    # Regression (issue 9, bug 8): VirtualClock().sleep(inf) was accepted, and time became inf.
    clock = VirtualClock()
    with pytest.raises(ValueError, match="sleep length must be a finite number"):
        clock.sleep(seconds)
    with pytest.raises(ValueError, match="seconds must be a finite number"):
        clock.advance(seconds)
    assert (clock.now(), clock.sleeps) == (0.0, [])


def test_virtual_clock_refuses_times_of_the_wrong_type() -> None:
    clock = VirtualClock()
    with pytest.raises(TypeError, match="sleep length must be a number of seconds"):
        clock.sleep("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="start must be a number of seconds"):
        VirtualClock(start="0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sleep length"):
        clock.sleep(True)  # a bool is not a number of seconds


def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    first = clock.now()
    assert clock.now() >= first
    assert isinstance(clock, resilience.Clock)
    assert isinstance(VirtualClock(), resilience.Clock)


# -- TurnClock: many threads on virtual time ----------------------------------------------

def test_turn_clock_interleaves_sleepers_in_time_order() -> None:
    clock = TurnClock()
    order: list[tuple[float, int]] = []

    def handle(i: int) -> float:
        for _ in range(2):
            clock.sleep(1.0)
            order.append((clock.now(), i))
        return clock.now()

    results = clock.run(handle, [0.0, 0.5, 1.0])
    assert results == [(2.0, 2.0), (2.5, 2.0), (3.0, 2.0)]
    # At t=1.0 request 2 starts (booked first) before request 0 wakes: ties go first come,
    # first served, so request 2 also wakes first at t=2.0.
    assert order == [(1.0, 0), (1.5, 1), (2.0, 2), (2.0, 0), (2.5, 1), (3.0, 2)]
    assert clock.sleeps == [1.0] * 6


def test_turn_clock_runs_the_real_retry_for_many_callers_and_repeats_exactly() -> None:
    def once(seed: int) -> list[tuple[object, float]]:
        clock = TurnClock()
        failures = {i: 2 for i in range(50)}

        @resilience.retry(attempts=3, deadline=None, clock=clock, rng=random.Random(seed))
        def call(i: int) -> str:
            if failures[i]:
                failures[i] -= 1
                raise TimeoutError
            return f"ok {i}"

        return clock.run(call, [i * 0.1 for i in range(50)])

    first = once(1)
    assert [v for v, _ in first] == [f"ok {i}" for i in range(50)]
    assert all(0 < latency <= 0.5 + 1.0 for _, latency in first)  # two full-jitter waits
    assert once(1) == first
    assert once(2) != first


def test_turn_clock_reports_failures_as_results() -> None:
    def handle(i: int) -> int:
        if i == 1:
            raise KeyError(i)
        return i

    results = TurnClock().run(handle, [0.0, 0.0, 0.0])
    assert results[0] == (0, 0.0) and results[2] == (2, 0.0)
    assert isinstance(results[1][0], KeyError)


def test_turn_clock_fails_loudly_when_a_thread_blocks_elsewhere() -> None:
    """This test really waits (0.05 s of real time): that is what it checks."""
    never = threading.Event()
    clock = TurnClock(stall_timeout=0.05)
    with pytest.raises(RuntimeError, match="no progress"):
        clock.run(lambda i: never.wait(), [0.0])
    never.set()


def test_turn_clock_refuses_bad_settings_and_coroutines() -> None:
    with pytest.raises(ValueError, match="stall_timeout must be a finite number"):
        TurnClock(stall_timeout=0)
    clock = TurnClock(start=5.0)
    with pytest.raises(ValueError, match=r"arrivals\[1\]"):
        clock.run(lambda i: i, [5.0, 4.0])
    with pytest.raises(RuntimeError, match="schedules threads"):
        asyncio.run(clock.asleep(1.0))
