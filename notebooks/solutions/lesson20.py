"""Model answers for lesson 20, "Batches"."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from resilience import classify
from resilience.clock import Clock


def to_resubmit(results: list[Any]) -> set[str]:
    """The custom_ids worth sending again unchanged: never processed (expired, canceled), or
    errored with an error a retry can fix."""
    again = set()
    for line in results:
        result = line.result
        if result.type in ("expired", "canceled"):
            again.add(line.custom_id)
        elif result.type == "errored":
            body = result.error.to_dict(warnings=False)  # an error body inside a 200 answer
            if classify(httpx2.Response(200, json=body)).retryable:
                again.add(line.custom_id)
    return again


def finish(client: anthropic.Anthropic, requests: list[dict[str, Any]], ledger: dict[str, str],
           clock: Clock, rounds: int) -> dict[str, str]:
    """Send what the ledger lacks as batches, resend only retryable failures, at most
    ``rounds`` batches; poll with backoff (60 s, doubling, at most 1 h)."""
    todo = [r for r in requests if r["custom_id"] not in ledger]
    for _ in range(rounds):
        if not todo:
            break
        batch = client.messages.batches.create(requests=todo)
        wait = 60.0
        while batch.processing_status != "ended":
            clock.sleep(wait)
            wait = min(wait * 2, 3600.0)
            batch = client.messages.batches.retrieve(batch.id)
        lines = list(client.messages.batches.results(batch.id))
        for line in lines:
            if line.result.type == "succeeded":
                ledger[line.custom_id] = line.result.message.content[0].text
        again = to_resubmit(lines)
        todo = [r for r in todo if r["custom_id"] in again]
    return ledger
