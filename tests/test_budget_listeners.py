"""RetryBudget listeners: called on every grant and denial, never able to corrupt the budget."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from resilience import RetryBudget
from resilience.budget import DENIED, GRANTED


def recorder() -> tuple[list[tuple[str, float]], Any]:
    seen: list[tuple[str, float]] = []

    def listener(budget: RetryBudget, event: str) -> None:
        seen.append((event, budget.tokens))

    return seen, listener


def test_listeners_hear_each_grant_and_denial_with_the_balance_after_it() -> None:
    seen, listener = recorder()
    budget = RetryBudget(capacity=2, ratio=0.5, cost=1, listeners=[listener])
    answers = [budget.try_spend() for _ in range(3)]
    budget.deposit()  # a deposit is not an event
    answers.append(budget.try_spend())
    answers.append(budget.try_spend())
    assert answers == [True, True, False, False, False]
    assert seen == [(GRANTED, 1.0), (GRANTED, 0.0), (DENIED, 0.0), (DENIED, 0.5),
                    (DENIED, 0.5)]
    assert (budget.granted, budget.denied) == (2, 3)
    assert (GRANTED, DENIED) == ("granted", "denied")


def test_listeners_run_in_order_and_can_be_added_later() -> None:
    order: list[str] = []
    budget = RetryBudget(capacity=1, listeners=(lambda b, e: order.append(f"a:{e}"),))
    budget.listeners.append(lambda b, e: order.append(f"b:{e}"))
    budget.try_spend()
    budget.try_spend()
    assert order == ["a:granted", "b:granted", "a:denied", "b:denied"]


def test_a_raising_listener_is_logged_and_changes_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    seen, listener = recorder()

    def broken(budget: RetryBudget, event: str) -> None:
        raise RuntimeError(f"metrics backend down on {event}")

    budget = RetryBudget(capacity=1, ratio=0, cost=1, listeners=[broken, listener])
    with caplog.at_level(logging.ERROR, logger="resilience.budget"):
        assert budget.try_spend() is True  # the caller's answer survives the listener
        assert budget.try_spend() is False
    assert (budget.tokens, budget.granted, budget.denied) == (0.0, 1, 1)
    assert seen == [(GRANTED, 0.0), (DENIED, 0.0)], "the next listener must still run"
    records = [r for r in caplog.records if r.name == "resilience.budget"]
    assert len(records) == 2
    assert "raised on granted" in records[0].getMessage()
    assert records[0].exc_info is not None and "metrics backend down" in str(
        records[0].exc_info[1])


def test_a_listener_may_read_and_use_the_budget_without_deadlock() -> None:
    calls: list[bool] = []

    def reentrant(budget: RetryBudget, event: str) -> None:
        budget.deposit()  # takes the lock: must not be held while listeners run
        calls.append(event == GRANTED)

    budget = RetryBudget(capacity=5, ratio=1, cost=1, listeners=[reentrant])
    done = threading.Event()

    def spend() -> None:
        budget.try_spend()
        done.set()

    worker = threading.Thread(target=spend, daemon=True)
    worker.start()
    assert done.wait(5.0), "try_spend deadlocked: a listener ran under the budget's lock"
    worker.join()
    assert calls == [True]
    assert budget.tokens == 5.0


def test_no_listeners_by_default() -> None:
    budget = RetryBudget()
    assert budget.listeners == []
    assert budget.try_spend() is True


def test_listeners_are_copied() -> None:
    mine: list[Any] = []
    budget = RetryBudget(listeners=mine)
    budget.listeners.append(print)
    assert mine == []


@pytest.mark.parametrize(("listeners", "needle"), [
    ([print, 42], r"listeners\[1\] must be callable"),
    (["print"], r"listeners\[0\] must be callable"),
    ("print", "listeners must be a list of callables"),
    (print, "listeners must be a list of callables"),
    (None, "listeners must be a list of callables"),
])
def test_bad_listeners_are_refused(listeners: Any, needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        RetryBudget(listeners=listeners)


def test_listeners_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        RetryBudget(10, 0.1, 1, [print])  # type: ignore[call-arg]
