"""Model answers for lesson 14, "Test your own app under failure"."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from resilience.testing import Outage

BUSY = "Claude is busy right now. Please try again in a minute."


def test_outage(fake_claude: Any, app: Callable[..., str]) -> None:
    """The API is down for the whole test: bounded attempts, no lost request, the right
    message, the request-id logged."""
    fake_claude.scenario(Outage(0, 1e9))
    lines: list[str] = []
    reply = app(fake_claude.client(), "Hi", lines.append)  # an exception fails the test
    assert len(fake_claude.calls) <= 3, f"{len(fake_claude.calls)} attempts"
    assert reply == BUSY, reply
    assert fake_claude.calls[-1].request_id in lines[-1], lines


def unaccounted(results: Iterable[Any], log: Iterable[Mapping[str, Any]]) -> set[str]:
    """The tags whose result does not match their last logged attempt, and the lost ones."""
    results = list(results)
    last = {entry["tag"]: entry for entry in log}  # later entries replace earlier ones
    missing = set(last) - {result.tag for result in results}
    for result in results:
        entry = last.get(result.tag)
        if entry is None:  # an answer from nowhere
            missing.add(result.tag)
            continue
        agrees = result.answered == (entry["outcome"] == "ok")
        same_id = result.request_id == entry["request_id"] or (
            not result.answered and result.request_id is None)
        if not (agrees and same_id):
            missing.add(result.tag)
    return missing
