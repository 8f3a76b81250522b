"""Regression tests for the test kit's bugs found by probing (issue 9: bugs 5, 7 and 11)."""

from __future__ import annotations

import random
import time

import anthropic
import anthropic._base_client as sdk_base
import anyio
import httpx
import pytest

from resilience import VirtualClock
from resilience.testing import (
    FakeClaude,
    InvalidOutcomeError,
    TurnClock,
    sdk_on_clock,
    timeout,
)
from resilience.testing.outcomes import outcome

HI = [{"role": "user", "content": "Hi"}]
ORIGINALS = (time, anyio, random.random)


def _sdk_names() -> tuple[object, object, object]:
    return (sdk_base.time, sdk_base.anyio, sdk_base.random)


# Bug 5: two FakeClaude blocks closed out of order left the SDK's sleep patched.


def test_blocks_closed_out_of_order_give_the_sdk_its_own_names_back() -> None:
    assert _sdk_names() == ORIGINALS
    first, second = FakeClaude(clock=VirtualClock()), FakeClaude(clock=VirtualClock())
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)   # out of order
    assert _sdk_names() != ORIGINALS   # the second block is still open
    sdk_base.time.sleep(4)
    assert (first.clock.now(), second.clock.now()) == (0, 4)  # the open one's clock
    second.__exit__(None, None, None)
    assert _sdk_names() == ORIGINALS


def test_after_out_of_order_blocks_a_real_client_waits_for_real() -> None:
    first, second = sdk_on_clock(VirtualClock(), random.Random(1)), \
        sdk_on_clock(VirtualClock(), random.Random(2))
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert sdk_base.time.sleep is time.sleep and sdk_base.anyio.sleep is anyio.sleep
    assert sdk_base.random is random.random


def test_overlapping_blocks_in_any_order_leave_nothing_behind() -> None:
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]):
        blocks = [FakeClaude(clock=VirtualClock()) for _ in range(3)]
        for block in blocks:
            block.__enter__()
        for i in order:
            blocks[i].__exit__(None, None, None)
        assert _sdk_names() == ORIGINALS, order


def test_the_latest_open_block_decides_the_jitter() -> None:
    with sdk_on_clock(VirtualClock(), random.Random(1)):
        with sdk_on_clock(VirtualClock(), random.Random(2)):
            assert sdk_base.random() == random.Random(2).random()
        assert sdk_base.random() == random.Random(1).random()


# Bug 7: respond() took outcomes that cannot answer; each became a retried connection error.


@pytest.mark.parametrize("value", [12345, None, 2.5, ["ok"], int, object()])
def test_respond_rejects_what_cannot_answer_up_front(value: object) -> None:
    with FakeClaude() as api, pytest.raises(TypeError, match="cannot answer a request"):
        api.respond(value)
    assert api.pending == ()


def test_respond_checks_every_outcome_before_queuing_any() -> None:
    with FakeClaude() as api:
        with pytest.raises(TypeError):
            api.respond("ok", None)
        assert api.pending == ()


@pytest.mark.parametrize(("after", "error"), [
    (-5, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
    ("5", TypeError), (True, TypeError),
])
def test_timeout_rejects_a_bad_wait(after: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="after"):
        timeout(after)  # type: ignore[arg-type]


def test_good_outcomes_are_still_accepted() -> None:
    assert timeout(0).after == 0 and timeout(2.5).after == 2.5 and timeout().after is None
    for value in (httpx.Response(200), httpx.ConnectError, httpx.ConnectError("x"),
                  lambda request: httpx.Response(200), "ok"):
        assert outcome(value) is not None


def test_a_side_effect_that_returns_a_non_response_fails_at_once_unretried() -> None:
    with FakeClaude() as api:
        api.respond(lambda request: 12345)
        client = api.client(max_retries=5)
        with pytest.raises(InvalidOutcomeError, match=r"12345, not an httpx\.Response"):
            client.messages.create(model=api.model, max_tokens=16, messages=HI)
    assert len(api.calls) == 1 and api.clock.now() == 0.0  # one attempt, no retry sleeps
    assert isinstance(InvalidOutcomeError("x"), anthropic.AnthropicError | TypeError)
    assert not isinstance(InvalidOutcomeError("x"), anthropic.APIConnectionError)


def test_a_side_effect_that_returns_a_non_response_fails_unretried_async() -> None:
    with FakeClaude() as api:
        api.respond(lambda request: None)

        async def main() -> None:
            await api.async_client(max_retries=5).messages.create(
                model=api.model, max_tokens=16, messages=HI)

        with pytest.raises(InvalidOutcomeError, match=r"None, not an httpx\.Response"):
            api.run(main())
    assert len(api.calls) == 1


# Bug 11: TurnClock.run reported a SystemExit raised in a handle as KeyError.


def test_turnclock_run_reraises_system_exit_from_a_handle() -> None:
    clock = TurnClock(stall_timeout=5)
    done: list[int] = []

    def handle(i: int) -> int:
        clock.sleep(i)
        if i == 1:
            raise SystemExit(3)
        done.append(i)
        return i

    with pytest.raises(SystemExit) as raised:
        clock.run(handle, [0.0, 0.0, 0.0])
    assert raised.value.code == 3
    assert done == [0, 2]  # the other requests still ran to the end


def test_turnclock_run_still_returns_ordinary_exceptions_as_results() -> None:
    clock = TurnClock(stall_timeout=5)

    def handle(i: int) -> int:
        if i == 0:
            raise KeyError("mine")
        return i

    results = clock.run(handle, [0.0, 1.0])
    assert isinstance(results[0][0], KeyError) and results[1] == (1, 0.0)


def test_sdk_on_clock_checks_its_arguments_and_leaves_nothing_patched() -> None:
    with pytest.raises(TypeError, match="clock"), sdk_on_clock(5, random.Random(0)):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match="rng"), sdk_on_clock(VirtualClock(), 5):  # type: ignore[arg-type]
        pass
    assert _sdk_names() == ORIGINALS
