"""The simulated Message Batches API (resilience.testing.batches), driven by the real SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest
from anthropic.types.messages import MessageBatch

from resilience.catalogue import ERRORS
from resilience.testing import FakeBatches, FakeClaude
from resilience.testing.batches import BATCH_EXPIRY, PollLimitError


def requests(api: FakeClaude, n: int, prefix: str = "q") -> list[Any]:
    return [{"custom_id": f"{prefix}{i}",
             "params": {"model": api.model, "max_tokens": 64,
                        "messages": [{"role": "user", "content": f"Question {i}"}]}}
            for i in range(n)]


def results(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    return {line.custom_id: line.result for line in client.messages.batches.results(batch_id)}


def test_create_retrieve_and_results_through_the_sdk() -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api, processing_time=600.0)
        client = api.client(max_retries=0)
        batch = client.messages.batches.create(requests=requests(api, 3))
        assert isinstance(batch, MessageBatch)
        assert batch.id == "msgbatch_fake_000001" and batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 3 and batch.results_url is None
        assert (batch.expires_at - batch.created_at).total_seconds() == BATCH_EXPIRY
        api.clock.advance(599.0)
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        with pytest.raises(anthropic.AnthropicError, match="results_url"):
            client.messages.batches.results(batch.id)  # the SDK itself refuses
        api.clock.advance(1.0)
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert ended.request_counts.succeeded == 3 and ended.request_counts.processing == 0
        assert ended.ended_at is not None and (ended.ended_at - ended.created_at).seconds == 600
        got = results(client, batch.id)
        assert sorted(got) == ["q0", "q1", "q2"]
        assert got["q1"].type == "succeeded"
        assert got["q1"].message.content[0].text == "Answer to q1."
        assert got["q1"].message.model == api.model
    assert batches.batch(batch.id).polls == [599.0, 599.0, 600.0, 600.0]
    assert batches.batch(batch.id).noticed == 600.0
    assert {c.outcome for c in api.calls} == {"route"}
    assert dict(batches.submitted) == {"q0": 1, "q1": 1, "q2": 1}


def test_results_come_in_finish_order_not_request_order() -> None:
    with FakeClaude(seed=0) as api:
        FakeBatches(api)
        client = api.client()
        batch = client.messages.batches.create(requests=requests(api, 12))
        api.clock.advance(3600.0)
        order = list(results(client, batch.id))
    assert sorted(order) == sorted(f"q{i}" for i in range(12))
    assert order != [f"q{i}" for i in range(12)]


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_every_catalogue_error_arrives_as_its_exact_body(name: str) -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api)
        batches.plan("q0", name)
        client = api.client()
        batch = client.messages.batches.create(requests=requests(api, 1))
        api.clock.advance(3600.0)
        result = results(client, batch.id)["q0"]
        counts = client.messages.batches.retrieve(batch.id).request_counts
    assert result.type == "errored" and counts.errored == 1
    spec = ERRORS[name]
    assert result.error.type == "error"
    assert result.error.error.type == spec.error_type
    assert result.error.error.message == spec.message
    assert result.error.request_id == "req_fake_batch_000001_00000"


def test_expired_requests_hold_the_batch_to_24_hours() -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api, processing_time=60.0)
        batches.plan("q1", "expired")
        client = api.client()
        batch = client.messages.batches.create(requests=requests(api, 3))
        api.clock.advance(3600.0)
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        api.clock.advance(BATCH_EXPIRY - 3600.0)
        ended = client.messages.batches.retrieve(batch.id)
        got = results(client, batch.id)
    assert ended.request_counts.expired == 1 and ended.request_counts.succeeded == 2
    assert got["q1"].type == "expired"
    assert list(got)[-1] == "q1"  # it never finished: last in the file


def test_cancel_keeps_what_finished_and_cancels_the_rest() -> None:
    with FakeClaude(seed=3) as api:
        batches = FakeBatches(api, processing_time=1000.0, cancel_time=10.0)
        client = api.client()
        batch = client.messages.batches.create(requests=requests(api, 20))
        api.clock.advance(500.0)
        canceling = client.messages.batches.cancel(batch.id)
        assert canceling.processing_status == "canceling"
        assert canceling.cancel_initiated_at is not None
        api.clock.advance(10.0)
        ended = client.messages.batches.retrieve(batch.id)
        got = results(client, batch.id)
        record = batches.batch(batch.id)
    assert ended.processing_status == "ended"
    finished = {i.custom_id for i in record.items if i.finish <= 510.0}
    assert 0 < len(finished) < 20  # the seed puts some either side of the cancel
    assert {k for k, r in got.items() if r.type == "succeeded"} == finished
    assert {k for k, r in got.items() if r.type == "canceled"} == set(got) - finished
    assert ended.request_counts.canceled == 20 - len(finished)
    assert record.ended_at == 510.0


def test_cancelling_an_ended_batch_changes_nothing() -> None:
    with FakeClaude(seed=0) as api:
        FakeBatches(api, processing_time=10.0)
        client = api.client()
        batch = client.messages.batches.create(requests=requests(api, 2))
        api.clock.advance(10.0)
        after = client.messages.batches.cancel(batch.id)
    assert after.processing_status == "ended" and after.cancel_initiated_at is None
    assert after.request_counts.succeeded == 2


def test_rates_are_seeded_per_custom_id_and_submission() -> None:
    def outcomes(seed: int, n: int) -> dict[str, str]:
        with FakeClaude(seed=seed) as api:
            batches = FakeBatches(api, rates={"api_error": 0.3, "expired": 0.1})
            api.client().messages.batches.create(requests=requests(api, n))
            return batches.batches[0].results()

    first = outcomes(0, 40)
    assert first == outcomes(0, 40)
    assert outcomes(0, 10) == {k: first[k] for k in list(first)[:10]}  # not order-bound
    assert first != outcomes(1, 40)
    counts = {name: list(first.values()).count(name) for name in set(first.values())}
    assert set(counts) == {"succeeded", "api_error", "expired"}


def test_a_broken_request_stays_broken_until_its_params_change() -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api, processing_time=10.0)
        batches.plan("q0", "invalid_request_error")
        batches.plan("q1", "api_error")
        client = api.client()
        for _ in range(2):
            client.messages.batches.create(requests=requests(api, 2))
        fixed = requests(api, 1)
        fixed[0]["params"]["max_tokens"] = 128
        client.messages.batches.create(requests=fixed)
        api.clock.advance(10.0)
    assert [b.results() for b in batches.batches] == [
        {"q0": "invalid_request_error", "q1": "api_error"},
        {"q0": "invalid_request_error", "q1": "succeeded"},  # api_error is not sticky
        {"q0": "succeeded"},
    ]
    assert batches.succeeded == {"q1": 1, "q0": 1}
    assert batches.submitted == {"q0": 3, "q1": 2}


def test_nothing_is_deduplicated_across_batches() -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api, processing_time=10.0)
        client = api.client()
        client.messages.batches.create(requests=requests(api, 2))
        client.messages.batches.create(requests=requests(api, 2))
        assert batches.succeeded == {}  # nothing has ended yet
        api.clock.advance(10.0)
        assert batches.succeeded == {"q0": 2, "q1": 2}


@pytest.mark.parametrize(("body", "message"), [
    ([], "at least one request"),
    ([{"custom_id": "has space", "params": {}}], "custom_id"),
    ([{"custom_id": "x" * 65, "params": {}}], "custom_id"),
    ([{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}], "not unique"),
    ([{"custom_id": "a", "params": "hi"}], "params"),
])
def test_create_refuses_what_the_api_refuses(body: list[Any], message: str) -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api)
        with pytest.raises(anthropic.BadRequestError, match=message) as caught:
            api.client().messages.batches.create(requests=body)
    assert caught.value.type == "invalid_request_error"
    assert batches.batches == [] and not batches.submitted


def test_unknown_batch_and_early_results_are_404() -> None:
    with FakeClaude(seed=0) as api:
        FakeBatches(api)
        client = api.client(max_retries=0)
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve("msgbatch_nope")
        batch = client.messages.batches.create(requests=requests(api, 1))
        with pytest.raises(anthropic.NotFoundError, match="not available"):
            client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)
        with pytest.raises(anthropic.NotFoundError):
            client.delete(f"/v1/messages/batches/{batch.id}", cast_to=object)


def test_the_poll_limit_stops_a_loop_that_never_waits() -> None:
    with FakeClaude(seed=0) as api:
        FakeBatches(api, poll_limit=3)
        client = api.client()  # default retries: the SDK must not retry the error
        batch = client.messages.batches.create(requests=requests(api, 1))
        for _ in range(3):
            client.messages.batches.retrieve(batch.id)
        with pytest.raises(PollLimitError, match="retrieved 4 times"):
            client.messages.batches.retrieve(batch.id)
    assert len(api.calls) == 5


def test_plain_messages_still_reach_the_fake() -> None:
    with FakeClaude(seed=0) as api:
        FakeBatches(api)
        api.respond("overloaded_error", "ok")
        api.client().messages.create(model=api.model, max_tokens=8,
                                     messages=[{"role": "user", "content": "Hi"}])
    assert [c.status for c in api.calls] == [529, 200]


def test_the_async_client_works_too() -> None:
    async def main(api: FakeClaude) -> list[str]:
        client = api.async_client()
        batch = await client.messages.batches.create(requests=requests(api, 2))
        await asyncio.sleep(3600.0)  # virtual: the loop's time is the fake's clock
        assert (await client.messages.batches.retrieve(batch.id)).processing_status == "ended"
        return [line.result.type async for line in await client.messages.batches.results(
            batch.id)]

    with FakeClaude(seed=0) as api:
        FakeBatches(api)
        assert api.run(main(api)) == ["succeeded", "succeeded"]


@pytest.mark.parametrize(("kwargs", "error", "word"), [
    ({"processing_time": 0.0}, ValueError, "processing_time"),
    ({"processing_time": BATCH_EXPIRY + 1}, ValueError, "processing_time"),
    ({"processing_time": "1"}, TypeError, "processing_time"),
    ({"cancel_time": -1.0}, ValueError, "cancel_time"),
    ({"cancel_time": float("inf")}, ValueError, "cancel_time"),
    ({"rates": {"api_error": 1.5}}, ValueError, "rates"),
    ({"rates": {"api_error": 0.6, "expired": 0.6}}, ValueError, "at most 1"),
    ({"rates": {"canceled": 0.1}}, ValueError, "canceled"),
    ({"rates": {"succeeded": 0.1}}, ValueError, "rates"),
    ({"rates": {"explode": 0.1}}, ValueError, "unknown outcome"),
    ({"rates": {"api_error": "0.1"}}, TypeError, "rates"),
    ({"rates": [("api_error", 0.1)]}, TypeError, "rates"),
    ({"poll_limit": 0}, ValueError, "poll_limit"),
    ({"poll_limit": 2.0}, TypeError, "poll_limit"),
])
def test_invalid_settings(kwargs: dict[str, Any], error: type[Exception], word: str) -> None:
    with FakeClaude(seed=0) as api, pytest.raises(error, match=word):
        FakeBatches(api, **kwargs)


def test_plan_checks_its_names() -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api)
        with pytest.raises(ValueError, match="canceled"):
            batches.plan("q0", "canceled")
        with pytest.raises(TypeError, match="plan"):
            batches.plan("q0", 3)  # type: ignore[arg-type]
