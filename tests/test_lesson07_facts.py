"""Every factual claim lesson 07 ("The thundering herd") makes, computed from the package."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from course.lesson07 import check_wait, check_worker_rng, outage_herd, rate_limited_herd

from resilience import backoff
from resilience.lab import HerdResult, herd

SEED = 0
CLIENTS = 1000


@pytest.fixture(scope="module")
def results() -> dict[str, HerdResult]:
    return {name: herd(CLIENTS, name, seed=SEED)
            for name in ("exponential", "full_jitter", "sdk_default")}


def test_the_setup_the_lesson_describes(results: dict[str, HerdResult]) -> None:
    for r in results.values():
        assert (r.clients, r.capacity, r.outage_s, r.max_attempts) == (1000, 50.0, 30.0, 10)


def test_without_jitter_every_client_sends_at_the_same_instants(
        results: dict[str, HerdResult]) -> None:
    plain = results["exponential"]
    assert plain.timeline[:16] == (2000, 1000, 0, 1000, 0, 0, 0, 1000) + (0,) * 7 + (1000,)
    waits = backoff.exponential().delays(random.Random(SEED))
    times = [0.0]
    for _ in range(9):
        times.append(times[-1] + next(waits))
    assert times[:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5]
    assert times[6:] == [31.5, 61.5, 91.5, 121.5]  # the waves after the outage
    # the spikes after the outage: 1000, then 950, 900, 850 (50 served per wave)
    assert [plain.timeline[s] for s in (31, 61, 91, 121)] == [1000, 950, 900, 850]
    assert plain.last_success_s == 121.5


def test_the_totals_the_lesson_reads_out(results: dict[str, HerdResult]) -> None:
    plain, full, sdk = results["exponential"], results["full_jitter"], results["sdk_default"]
    assert (plain.served, plain.gave_up) == (200, 800)
    assert (full.served, f"{full.last_success_s:.1f}", max(full.timeline[30:])) == (
        976, "57.4", 61)
    assert (sdk.served, f"{sdk.p99_s:.1f}") == (324, "37.1")
    # peak attempts per second after the outage, against a capacity of 50
    peaks = {name: max(r.timeline[30:]) for name, r in results.items()}
    assert peaks == {"exponential": 1000, "full_jitter": 61, "sdk_default": 587}
    # the SDK arrives with about 2 attempts left per client, fewer than full jitter
    in_outage = {name: sum(r.timeline[:30]) for name, r in results.items()}
    assert in_outage["sdk_default"] == 7995 > in_outage["full_jitter"]
    assert round((10 * CLIENTS - in_outage["sdk_default"]) / CLIENTS) == 2


def test_exact_retry_after_brings_clients_back_in_lockstep() -> None:
    sdk = herd(200, "sdk_default", seed=SEED, capacity=8.0, outage=0.0, max_attempts=20)
    full = herd(200, "full_jitter", seed=SEED, capacity=8.0, outage=0.0, max_attempts=20)
    # 8 tokens at t = 0, then one client per 1/8 s round for 19 rounds
    assert (sdk.served, sdk.gave_up, sdk.last_success_s) == (8 + 19, 173, 19 / 8)
    assert (full.served, full.gave_up) == (200, 0)


def test_more_capacity_does_not_save_plain_exponential() -> None:
    assert herd(CLIENTS, "exponential", seed=SEED, capacity=200.0).served == 800


def test_three_attempts_cannot_ride_out_a_30_s_outage() -> None:
    for name in ("exponential", "full_jitter", "sdk_default"):
        r = herd(CLIENTS, name, seed=SEED, max_attempts=3)
        assert (r.served, r.gave_up, r.attempts) == (0, 1000, 3000)
    # three attempts span at most 1.5 s (waits 0.5 and 1.0 s, before any jitter)
    assert backoff.exponential().next_delay(0, 0.5, 0) + backoff.exponential().next_delay(
        1, 0.5, 0) == 1.5
    assert backoff.sdk_default().next_delay(0, 0.5, 0) + backoff.sdk_default().next_delay(
        1, 0.5, 0) == 1.5


# -- exercise 07.1: retry-after as a floor ------------------------------------------------

def x(n: int) -> float:
    return min(30.0, 0.5 * 2**n)


WRONG_WAITS: dict[str, Callable[[int, float | None, float], float]] = {
    "exactly retry-after (the SDK)": lambda n, ra, u: ra if ra is not None else u * x(n),
    "the floor without jitter": lambda n, ra, u: max(ra or 0.0, x(n)),
    "retry-after ignored": lambda n, ra, u: u * x(n),
    "retry-after plus a second of jitter": lambda n, ra, u: (ra or 0.0) + u,
}


@pytest.mark.parametrize("name", list(WRONG_WAITS))
def test_checker_07_1_rejects_a_wait_that_keeps_the_herd_together_or_is_rude(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_wait(WRONG_WAITS[name]) is False, name
    assert "not yet" in capsys.readouterr().out


def test_waiting_exactly_retry_after_turns_95_then_90_away() -> None:
    # the hint of 07.1: at t = 0, 5 are served and 95 get a 429 with retry-after 1 s;
    # all come back at t = 1 s, 5 more are served and 90 are turned away again.
    seen: list[tuple[int, float | None]] = []

    def exact(n: int, retry_after: float | None, u: float) -> float:
        seen.append((n, retry_after))
        assert retry_after is not None
        return retry_after

    run = rate_limited_herd(exact)
    assert seen[:95] == [(0, 1.0)] * 95 and seen[95:185] == [(1, 1.0)] * 90, (
        "lesson 07: the 429s of the rate-limited herd changed; the hint says 95 clients "
        "are turned away at t = 0 and 90 at t = 1 s, with retry-after 1 s")
    assert (run.served, run.rude) == (50, 0)  # 5 per round, 10 rounds


# -- exercise 07.2: every worker its own random source -------------------------------------

WRONG_RNGS: dict[str, Callable[[int, int], Any]] = {
    "the same seed for every worker": lambda worker, seed: random.Random(seed),
    "never seeded": lambda worker, seed: random.Random(),
    "the seed ignored": lambda worker, seed: random.Random(worker),
}


@pytest.mark.parametrize("name", list(WRONG_RNGS))
def test_checker_07_2_rejects_random_sources_that_are_shared_or_unrepeatable(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_worker_rng(WRONG_RNGS[name]) is False, name
    assert "not yet" in capsys.readouterr().out


def test_checker_07_2_passes_a_plain_sum_of_seed_and_worker(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check_worker_rng(lambda worker, seed: random.Random(seed * 1_000_003 + worker))


def test_workers_seeded_alike_come_back_as_one_wave_of_100() -> None:
    # the hint of 07.2: random.Random(seed) for every worker keeps the herd in one wave
    alike = outage_herd(lambda worker, seed: random.Random(seed))
    assert alike.peak == 100 and alike.served < 100, (
        f"lesson 07: workers seeded alike now peak at {alike.peak} attempts/s with "
        f"{alike.served} served; the hint says one wave of 100")
    apart = outage_herd(lambda worker, seed: random.Random(f"{seed}-{worker}"))
    assert apart.peak <= 30 and apart.served == 100
