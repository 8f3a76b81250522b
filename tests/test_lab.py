"""The simulation lab: exact arithmetic, published claims at fixed seeds, determinism, errors."""

from __future__ import annotations

import heapq
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from resilience import RetryBudget, backoff
from resilience.lab import (
    BROOKER_STRATEGIES,
    HERD_STRATEGIES,
    EventQueue,
    Lockstep,
    amplification,
    brooker2015,
    brooker2015_runs,
    budgets,
    expected_calls,
    expected_load,
    geometric_series,
    herd,
    herd_sweep,
    openloop,
    to_csv,
)

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = {c["id"]: c for c in json.loads((ROOT / "data" / "published_claims.json")
                                         .read_text())["claims"]}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resilience", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


# -- the core stays free of NumPy -------------------------------------------------------

def test_import_resilience_does_not_import_numpy_or_matplotlib() -> None:
    code = ("import resilience, sys; "
            "assert 'numpy' not in sys.modules, 'numpy'; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- engine -----------------------------------------------------------------------------

def test_event_queue_pops_in_time_order_and_moves_the_clock() -> None:
    queue: EventQueue[str] = EventQueue()
    for t, item in [(3.0, "c"), (1.0, "a"), (2.0, "b"), (1.0, "a2")]:
        queue.push(t, item)
    popped = [queue.pop() for _ in range(4)]
    assert popped == [(1.0, "a"), (1.0, "a2"), (2.0, "b"), (3.0, "c")]
    assert queue.clock.now() == 3.0
    with pytest.raises(ValueError, match="before now"):
        queue.push(2.0, "late")


def test_lockstep_finds_each_runs_earliest_event() -> None:
    times = np.array([[3.0, 1.0, 2.0], [np.inf, 5.0, 4.0]])
    lock = Lockstep(times)
    flat, now = lock.earliest()
    assert list(flat) == [1, 5] and list(now) == [1.0, 4.0]
    lock.schedule(flat, np.array([np.inf, np.inf]))
    assert list(lock.earliest()[1]) == [2.0, 5.0]
    assert not lock.finished()


# -- brooker2015 ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def at_100() -> dict[str, tuple[float, float]]:
    """The published comparison point: N = 100, 100 runs, seed 0."""
    rows = brooker2015([100], runs=100, seed=0)
    return {r.strategy: (r.calls, r.time_ms) for r in rows}


def test_full_jitter_makes_more_than_half_fewer_calls_than_exponential(at_100) -> None:
    claim = CLAIMS["brooker2015.full_vs_exponential_calls"]
    assert at_100["full_jitter"][0] < claim["check"]["less_than"] * at_100["exponential"][0]


def test_full_and_equal_jitter_do_about_the_same_work(at_100) -> None:
    low, high = CLAIMS["brooker2015.full_vs_equal_work"]["check"]["between"]
    assert low < at_100["equal_jitter"][0] / at_100["full_jitter"][0] < high


def test_decorrelated_does_a_little_more_work_and_is_a_little_faster(at_100) -> None:
    low, high = CLAIMS["brooker2015.decorrelated_work"]["check"]["between"]
    assert low < at_100["decorrelated_jitter"][0] / at_100["full_jitter"][0] < high
    assert at_100["decorrelated_jitter"][1] < at_100["full_jitter"][1]


def test_exponential_without_jitter_is_the_slowest_backoff(at_100) -> None:
    backoffs = [s for s in BROOKER_STRATEGIES if s != "none"]
    assert max(backoffs, key=lambda s: at_100[s][1]) == "exponential"
    assert at_100["equal_jitter"][1] > 1.2 * at_100["full_jitter"][1]


def test_the_claims_file_matches_the_simulation(at_100) -> None:
    reproduced = CLAIMS["brooker2015.full_vs_exponential_calls"]["reproduced"]
    assert round(at_100["full_jitter"][0], 1) == reproduced["full_jitter"]
    assert round(at_100["exponential"][0], 1) == reproduced["exponential"]


def test_brooker2015_repeats_to_the_digit_and_depends_on_the_seed() -> None:
    a = brooker2015([20], runs=10, seed=3)
    assert a == brooker2015([20], runs=10, seed=3)
    assert a != brooker2015([20], runs=10, seed=4)


def test_a_point_does_not_depend_on_what_is_simulated_beside_it() -> None:
    alone = brooker2015([30], runs=5, seed=1, strategies=["full_jitter"])
    together = brooker2015([10, 30], runs=5, seed=1)
    assert alone[0] in together


def test_one_client_writes_once() -> None:
    calls, times = brooker2015_runs(1, ["exponential"], runs=20, seed=0)["exponential"]
    assert (calls == 1).all()
    assert (times > 0).all() and (times < 100).all()   # four messages of ~10 ms


def _reference_occ(clients: int, strategy: backoff.Backoff,
                   rng: random.Random) -> tuple[int, float]:
    """A plain heap simulation of the same model, one message per event (slow, obvious)."""
    def d() -> float:
        return abs(rng.normalvariate(0.010, 0.002))
    version, calls, now, seq = 0, 0, 0.0, 0
    queue: list[tuple[float, int, str, int, int]] = []
    state = {c: [0, strategy.base] for c in range(clients)}   # retries, previous sleep
    for c in range(clients):
        queue.append((d(), seq := seq + 1, "read", c, 0))
    heapq.heapify(queue)
    while queue:
        now, _, kind, c, seen = heapq.heappop(queue)
        if kind == "read":
            heapq.heappush(queue, (now + d() + d(), seq := seq + 1, "write", c, version))
        elif kind == "write":
            calls += 1
            if seen == version:
                version += 1
                heapq.heappush(queue, (now + d(), seq := seq + 1, "done", c, 0))
            else:
                state[c][0] += 1
                sleep = strategy.next_delay(state[c][0], state[c][1], rng.random())
                state[c][1] = sleep
                heapq.heappush(queue, (now + d() + d() + sleep, seq := seq + 1, "read", c, 0))
    return calls, now * 1000


def test_the_lockstep_model_agrees_with_a_plain_heap_simulation() -> None:
    rng = random.Random(0)
    strategy = backoff.full_jitter(0.005, 2.0)
    reference = [_reference_occ(20, strategy, rng) for _ in range(300)]
    ref_calls = sum(c for c, _ in reference) / 300
    ref_time = sum(t for _, t in reference) / 300
    calls, times = brooker2015_runs(20, ["full_jitter"], runs=300, seed=0)["full_jitter"]
    assert calls.mean() == pytest.approx(ref_calls, rel=0.05)
    assert times.mean() == pytest.approx(ref_time, rel=0.08)


def test_the_lab_calls_the_core_backoff_formula(monkeypatch) -> None:
    seen: list[str] = []
    original = backoff.Backoff.next_delay

    def spy(self, n, previous, u):
        seen.append(self.kind)
        return original(self, n, previous, u)

    monkeypatch.setattr(backoff.Backoff, "next_delay", spy)
    brooker2015([5], runs=2, seed=0, strategies=["decorrelated_jitter"])
    herd(50, "equal_jitter", seed=0, outage=2.0, max_attempts=3)
    assert "decorrelated_jitter" in seen and "equal_jitter" in seen


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"clients": [-1]}, "clients"), ({"clients": [0]}, "clients"), ({"runs": 0}, "runs"),
    ({"seed": -1}, "seed"), ({"strategies": ["bogus"]}, "strategies"),
    ({"clients": []}, "clients"),
])
def test_brooker2015_bad_parameters_say_which(kwargs, name) -> None:
    args = {"clients": [10], "runs": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=name):
        brooker2015(**args)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"runs": 1.5}, "runs must be an int"), ({"clients": ["10"]}, "clients must be an int"),
    ({"seed": "0"}, "seed must be an int"), ({"strategies": [1]}, "strategies must hold"),
])
def test_brooker2015_wrong_types_raise_type_error_naming_them(kwargs, name) -> None:
    args = {"clients": [10], "runs": 2, "seed": 0} | kwargs
    with pytest.raises(TypeError, match=name):
        brooker2015(**args)


# -- herd -------------------------------------------------------------------------------

def test_herd_without_jitter_retries_in_synchronised_spikes() -> None:
    plain = herd(1000, "exponential", seed=0)
    jittered = herd(1000, "full_jitter", seed=0)
    # Exponential: every client at t = 0, 0.5, 1.5, 3.5 ... so whole seconds stay empty.
    assert plain.timeline[:8] == (2000, 1000, 0, 1000, 0, 0, 0, 1000)
    assert max(jittered.timeline[1:30]) < 1000
    assert jittered.served > plain.served


def test_herd_accounting_adds_up() -> None:
    r = herd(500, "decorrelated_jitter", seed=2, capacity=20.0, outage=10.0, max_attempts=6)
    assert sum(r.timeline) == r.attempts
    assert sum(r.successes) == r.served
    assert r.served + r.gave_up == 500
    assert r.attempts <= 500 * 6
    assert 10.0 <= r.p50_s <= r.p99_s <= r.last_success_s


def test_herd_serves_everyone_with_enough_capacity_and_attempts() -> None:
    r = herd(100, "full_jitter", seed=0, capacity=1000.0, outage=0.0, max_attempts=3)
    assert r.served == 100 and r.gave_up == 0 and r.attempts == 100


def test_herd_sdk_default_waits_exactly_retry_after_and_comes_back_together() -> None:
    # Every client told "the next token is free in 0.1 s" returns at that same instant,
    # so the SDK's schedule (exact retry-after, no jitter on it) serves one client per
    # token and burns everyone else's attempts together.
    sdk = herd(200, "sdk_default", seed=0, capacity=10.0, outage=0.0, max_attempts=20)
    ours = herd(200, "full_jitter", seed=0, capacity=10.0, outage=0.0, max_attempts=20)
    assert sdk.served < 40 and sdk.gave_up > 150
    assert sdk.last_success_s < 2.5
    assert ours.served > sdk.served


def test_herd_is_deterministic() -> None:
    assert herd(300, "full_jitter", seed=5) == herd(300, "full_jitter", seed=5)
    assert herd(300, "full_jitter", seed=5) != herd(300, "full_jitter", seed=6)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"clients": -5}, "clients"), ({"capacity": 0.0}, "capacity"),
    ({"outage": -1.0}, "outage"), ({"max_attempts": 0}, "max_attempts"),
    ({"strategy": "none"}, "strategy"),
])
def test_herd_bad_parameters_say_which(kwargs, name) -> None:
    args = {"clients": 10, "strategy": "full_jitter", "seed": 0} | kwargs
    with pytest.raises(ValueError, match=name):
        herd(**args)


# -- amplification ----------------------------------------------------------------------

def test_amplification_exact_64_and_243() -> None:
    assert expected_calls(3, 4, 1.0) == 64
    assert expected_calls(5, 3, 1.0) == 243
    rows = {r.policy: r for r in amplification(3, 4, 1.0, requests=10, seed=0)}
    assert rows["every_layer"].simulated == 64 and rows["top_layer"].simulated == 4
    rows = {r.policy: r for r in amplification(5, 3, 1.0, requests=10, seed=0)}
    assert rows["every_layer"].simulated == 243 and rows["top_layer"].simulated == 3


def test_amplification_closed_form_matches_simulation_under_partial_failure() -> None:
    rows = {r.policy: r for r in amplification(3, 3, 0.5, requests=4000, seed=1)}
    for policy in ("every_layer", "top_layer"):
        assert rows[policy].simulated == pytest.approx(rows[policy].expected, rel=0.05)


def test_token_bucket_allows_500_over_5_retries_in_a_total_outage() -> None:
    budget = RetryBudget(capacity=500, ratio=0, cost=5)
    assert sum(budget.try_spend() for _ in range(1000)) == 100 == 500 / 5
    rows = {r.policy: r for r in amplification(1, 3, 1.0, requests=1000, seed=0)}
    assert rows["budget_per_layer"].bottom_calls == 1000 + 100


def test_amplification_bad_parameters() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        amplification(3, 4, 1.5, requests=10, seed=0)
    with pytest.raises(ValueError, match="layers"):
        amplification(0, 4, 1.0, requests=10, seed=0)
    with pytest.raises(ValueError, match="10\\*\\*6"):
        amplification(10, 10, 1.0, requests=10, seed=0)


# -- openloop ---------------------------------------------------------------------------

def test_backoff_barely_changes_open_loop_load_but_cuts_closed_loop_load() -> None:
    rows = {(r.loop, r.backoff, r.failure_rate): r for r in openloop([0.0, 0.5], seed=0,
                                                                      seconds=20.0)}
    for x in (0.0, 0.5):
        open_none = rows[("open", "none", x)].calls_per_s
        open_backoff = rows[("open", "exponential", x)].calls_per_s
        assert open_backoff == pytest.approx(open_none, rel=0.02)
        assert open_none == pytest.approx(rows[("open", "none", x)].expected_per_s, rel=0.02)
    assert rows[("closed", "none", 0.5)].calls_per_s == pytest.approx(1000.0, rel=0.01)
    assert rows[("closed", "exponential", 0.5)].calls_per_s < 0.7 * 1000.0


def test_openloop_bad_parameters() -> None:
    with pytest.raises(ValueError, match="failure_rates"):
        openloop([-0.1], seed=0)
    with pytest.raises(ValueError, match="clients"):
        openloop([0.1], seed=0, clients=0)


# -- budgets ----------------------------------------------------------------------------

def test_budgets_levels_match_brooker_2022() -> None:
    rows = {(r.policy, r.failure_rate): r for r in budgets([0.0, 1.0], seed=0, requests=3000)}
    assert rows[("retries", 1.0)].load == 4.0 == expected_load(1.0)
    assert 1.05 < rows[("token_bucket", 1.0)].load < 1.15
    assert rows[("retry_breaker", 1.0)].load < 1.1
    assert rows[("adaptive_throttle", 1.0)].load < 0.05
    for policy in ("retries", "token_bucket", "retry_breaker", "adaptive_throttle"):
        assert rows[(policy, 0.0)].load == 1.0 and rows[(policy, 0.0)].success_rate == 1.0


def test_plain_retries_follow_one_plus_x_plus_x2_plus_x3() -> None:
    (row,) = budgets([0.5], seed=0, requests=5000, policies=["retries"])
    assert row.load == pytest.approx(expected_load(0.5), rel=0.03)


def test_budgets_bad_parameters() -> None:
    with pytest.raises(ValueError, match="policies"):
        budgets([0.5], seed=0, policies=["nope"])
    with pytest.raises(ValueError, match="requests"):
        budgets([0.5], seed=0, requests=0)


# -- tidy output and the command line ---------------------------------------------------

def test_to_csv_uses_fixed_decimals() -> None:
    rows = brooker2015([5], runs=2, seed=0, strategies=["none"])
    text = to_csv(rows, {"calls": 1, "time_ms": 1})
    header, line = text.splitlines()
    assert header == "clients,strategy,calls,time_ms"
    assert line.startswith("5,none,") and len(line.split(",")[2].split(".")[1]) == 1


def test_cli_brooker2015_prints_the_pinned_csv_deterministically() -> None:
    first = run_cli("brooker2015", "--clients", "10,20", "--runs", "10", "--seed", "0")
    second = run_cli("brooker2015", "--clients", "10,20", "--runs", "10", "--seed", "0")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    lines = first.stdout.splitlines()
    assert lines[0] == "clients,strategy,calls,time_ms"
    assert [line.split(",")[1] for line in lines[1:6]] == list(BROOKER_STRATEGIES)
    assert len(lines) == 11


@pytest.mark.parametrize("experiment", [
    ["herd", "--clients", "100", "--seed", "0"],
    ["herd", "--clients", "50", "--strategies", "exponential", "--timeline", "--seed", "0"],
    ["amplification", "--layers", "5", "--attempts", "3", "--seed", "0"],
    ["openloop", "--failure-rates", "0,1", "--seconds", "5", "--seed", "0"],
    ["budgets", "--failure-rates", "0,1", "--requests", "200", "--seed", "0"],
])
def test_cli_runs_every_experiment(experiment) -> None:
    result = run_cli(*experiment)
    assert result.returncode == 0, result.stderr
    assert "," in result.stdout.splitlines()[0]


@pytest.mark.parametrize("args", [
    ["brooker2015", "--clients", "-10", "--seed", "0"],
    ["brooker2015", "--clients", "ten", "--seed", "0"],
    ["herd", "--capacity", "0", "--seed", "0"],
    ["herd", "--strategies", "bogus", "--seed", "0"],
    ["nonsense"],
])
def test_cli_bad_arguments_exit_2_with_a_message(args) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert "error" in result.stderr and "Traceback" not in result.stderr


def test_cli_help_works() -> None:
    assert run_cli("--help").returncode == 0
    assert "clients,strategy,calls,time_ms" in run_cli("brooker2015", "--help").stdout


# -- pinned CSV: the command line prints exactly what it printed before issue 9 ---------------

PINNED = {
    ("budgets", "--failure-rates", "0.5,1", "--requests", "300", "--seed", "0"): """\
policy,failure_rate,requests,load,success_rate
retries,0.50,300,1.8700,0.9400
token_bucket,0.50,300,1.1133,0.5667
retry_breaker,0.50,300,1.1900,0.5967
adaptive_throttle,0.50,300,1.8167,0.9300
retries,1.00,300,4.0000,0.0000
token_bucket,1.00,300,1.1133,0.0000
retry_breaker,1.00,300,1.1900,0.0000
adaptive_throttle,1.00,300,0.0233,0.0000
""",
    ("openloop", "--failure-rates", "0.3", "--seconds", "5", "--seed", "1"): """\
loop,backoff,failure_rate,calls_per_s,expected_per_s,success_rate
open,none,0.30,1412.2,1417.0,1.0
closed,none,0.30,1000.0,1417.0,1.0
open,exponential,0.30,1397.2,1417.0,1.0
closed,exponential,0.30,704.8,1417.0,1.0
""",
    ("brooker2015", "--clients", "20", "--runs", "5", "--seed", "2"): """\
clients,strategy,calls,time_ms
20,none,154.8,598.8
20,exponential,148.4,14353.5
20,full_jitter,100.0,889.7
20,equal_jitter,107.6,1733.1
20,decorrelated_jitter,105.4,796.2
""",
    ("herd", "--clients", "300", "--strategies", "sdk_default,decorrelated_jitter", "--outage",
     "5", "--max-attempts", "4", "--capacity", "20", "--seed", "3"): """\
strategy,clients,capacity,outage_s,max_attempts,attempts,served,gave_up,last_success_s,p50_s,p99_s
sdk_default,300,20.0,5.0,4,1200,0,300,0.00,nan,nan
decorrelated_jitter,300,20.0,5.0,4,1193,116,184,13.75,6.99,13.25
""",
    ("amplification", "--layers", "3", "--attempts", "3", "--failure-rate", "0.5",
     "--requests", "500", "--seed", "1"): """\
policy,layers,attempts,failure_rate,requests,expected,simulated,bottom_calls
every_layer,3,3,0.500,500,2.000,1.896,948
top_layer,3,3,0.500,500,1.750,1.704,852
budget_per_layer,3,3,0.500,500,nan,1.600,800
""",
}


@pytest.mark.parametrize("args", list(PINNED))
def test_cli_output_is_pinned_to_the_digit(args: tuple[str, ...]) -> None:
    # Recorded with the code before issue 9 (own loops in the lab, params.py); the shared
    # retry core, backoff.by_name and the one series must not change a digit.
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == PINNED[args]
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


# -- regression (issue 9, bug 12): the command line ---------------------------------------

@pytest.mark.parametrize("strategies", [",", " , ", ""])
def test_cli_an_empty_strategy_list_exits_2(strategies: str) -> None:
    # It used to run every strategy.
    result = run_cli("herd", "--clients", "10", "--strategies", strategies, "--seed", "0")
    assert result.returncode == 2 and result.stdout == ""
    assert "expected at least one strategy" in result.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["openloop", "--seconds", "1e7"], "of memory; the limit is 50% of the memory this machine"),
    (["herd", "--clients", "10000000", "--max-attempts", "1000"], "GiB of memory"),
    (["brooker2015", "--clients", "100000", "--runs", "100000"], "GiB of memory"),
    (["budgets", "--requests", "10000000"], "the limit is 8,000,000 requests"),
    (["brooker2015", "--clients", "3000", "--runs", "100"], "would take minutes; the limit"),
])
def test_cli_refuses_sizes_too_big_for_this_machine_before_allocating(args: list[str],
                                                                      needle: str) -> None:
    # They used to die with a NumPy MemoryError traceback, or run for many minutes.
    result = run_cli(*args, "--seed", "0")
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_memory_message_names_the_limit_and_this_machines_memory(monkeypatch) -> None:
    from resilience.lab import sizing

    monkeypatch.setattr(sizing, "machine_memory", lambda: (8 * sizing.GIB, 16 * sizing.GIB))
    with pytest.raises(ValueError) as info:
        openloop([0.5], seed=0, seconds=1e5)
    assert str(info.value) == (
        "openloop: 100 clients x 10/s x 100000 s would need about 13.4 GiB of memory; the "
        "limit is 50% of the memory this machine has available, 4.0 GiB (available 8.0 GiB "
        "of 16.0 GiB)")
    monkeypatch.setattr(sizing, "machine_memory", lambda: (64 * sizing.GIB, 64 * sizing.GIB))
    with pytest.raises(ValueError, match="would take minutes"):
        openloop([0.5], seed=0, seconds=1e5)   # fits in memory, but not in a minute


def test_machine_memory_reads_this_machine() -> None:
    from resilience.lab.sizing import machine_memory

    available, total = machine_memory()
    assert 0 < available <= total


def test_cli_progress_goes_to_stderr_only_and_only_when_asked_or_on_a_terminal() -> None:
    args = ("brooker2015", "--clients", "10,20", "--runs", "3", "--seed", "0")
    quiet = run_cli(*args)
    shown = run_cli(*args, "--progress")
    assert quiet.returncode == shown.returncode == 0
    assert shown.stdout == quiet.stdout            # the CSV is untouched
    assert quiet.stderr == ""                      # stderr is a pipe here: no bar
    assert "brooker2015" in shown.stderr and "2/2" in shown.stderr
    assert run_cli(*args, "--no-progress").stderr == ""


def test_progress_is_called_once_per_point() -> None:
    seen: list[int] = []
    budgets([0.0, 1.0], seed=0, requests=10, policies=["retries"], progress=seen.append)
    herd_sweep([10, 20], ["full_jitter"], seed=0, progress=seen.append)
    openloop([0.5], seed=0, seconds=1.0, progress=seen.append)
    brooker2015([5, 6], runs=2, seed=0, strategies=["none"], progress=seen.append)
    assert seen == [1] * 7


# -- one home for each fact -----------------------------------------------------------------

def test_the_lab_builds_its_strategies_with_backoff_by_name(monkeypatch) -> None:
    seen = []
    real = backoff.by_name

    def spy(name, *args, **kwargs):
        seen.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(backoff, "by_name", spy)
    herd(20, "equal_jitter", seed=0, outage=1.0, max_attempts=3)
    brooker2015([5], runs=2, seed=0, strategies=["none", "full_jitter"])
    assert seen == ["equal_jitter", "none", "full_jitter"]
    assert tuple(n for n in backoff.NAMES if n != "sdk_default") == BROOKER_STRATEGIES
    assert tuple(n for n in backoff.NAMES if n != "none") == HERD_STRATEGIES


def test_herd_amplification_and_budgets_decide_with_the_retry_core(monkeypatch) -> None:
    from resilience.retrying import RetryPolicy

    calls = []
    real = RetryPolicy.decide

    def spy(self, failed, elapsed, retry_after=None, **kwargs):
        decision = real(self, failed, elapsed, retry_after, **kwargs)
        calls.append((self.attempts, failed, decision.reason is None))
        return decision

    monkeypatch.setattr(RetryPolicy, "decide", spy)
    amplification(1, 3, 1.0, requests=1, seed=0, budget_capacity=500)
    assert calls == [(3, 1, True), (3, 2, True), (3, 3, False)] * 3  # one per policy
    calls.clear()
    budgets([1.0], seed=0, requests=1, retries=2, policies=["retries"])
    assert calls == [(3, 1, True), (3, 2, True), (3, 3, False)]
    calls.clear()
    # One token at t = 0: one client is served, four get a 429, retry once, and give up.
    result = herd(5, "full_jitter", seed=0, outage=0.0, capacity=1.0, max_attempts=2)
    assert sorted(calls) == [(2, 1, True)] * 4 + [(2, 2, False)] * (4 - result.served + 1)


def test_geometric_series_is_written_once_and_exact() -> None:
    assert geometric_series(0.5, 3) == 1.875 == expected_load(0.5)
    assert geometric_series(1.0, 3) == 4.0 and geometric_series(0.0, 5) == 1.0
    assert geometric_series(0.1, 1) == 1.1           # the closed form gave 1.0999999999999999
    assert expected_calls(1, 4, 0.3) == geometric_series(0.3, 3)
    rows = {r.loop: r for r in openloop([0.3], seed=0, seconds=1.0)}
    assert rows["open"].expected_per_s == 100 * 10 * geometric_series(0.3, 3)
    with pytest.raises(ValueError, match="x must be a finite number >= 0 and <= 1"):
        geometric_series(1.5, 2)
    with pytest.raises(TypeError, match="r must be an int"):
        geometric_series(0.5, 2.0)
