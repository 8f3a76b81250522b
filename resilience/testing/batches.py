"""A simulated Message Batches API, on a :class:`~resilience.testing.FakeClaude`'s clock.

::

    from resilience.testing import FakeBatches, FakeClaude

    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api, rates={"api_error": 0.2, "expired": 0.1})
        batches.plan("q1", "invalid_request_error")     # q1's request is broken
        client = api.client()
        batch = client.messages.batches.create(requests=[
            {"custom_id": f"q{i}", "params": {"model": api.model, "max_tokens": 64,
                                              "messages": [{"role": "user", "content": "Hi"}]}}
            for i in range(10)])
        api.clock.advance(3600)                          # processing takes an hour
        client.messages.batches.retrieve(batch.id).processing_status     # 'ended'
        for line in client.messages.batches.results(batch.id):
            print(line.custom_id, line.result.type)      # succeeded, errored, expired, ...

The routes it adds to ``api.router`` answer the real SDK's ``messages.batches`` calls, sync
or async:

* ``POST /v1/messages/batches`` (``create``): checks the requests as the API does (at least
  one; each ``custom_id`` 1-64 letters, digits, ``-`` or ``_``, unique in the batch; ``params``
  an object) and answers a 400 ``invalid_request_error`` otherwise.
* ``GET /v1/messages/batches/{id}`` (``retrieve``, and the first step of ``results``):
  ``processing_status`` is ``in_progress`` until the batch ends, ``canceling`` after a cancel,
  then ``ended``. ``request_counts`` holds every request under ``processing`` until the batch
  ends, then the tally of results (the API's rule: the other counts are zero until then).
  ``results_url`` appears once it has ended.
* ``POST /v1/messages/batches/{id}/cancel``: the batch is ``canceling`` for ``cancel_time``
  seconds, then ends. Requests that finish before that keep their result; the rest are
  ``canceled``. Cancelling a batch that is already canceling or ended changes nothing (the
  simulation's choice).
* ``GET /v1/messages/batches/{id}/results``: JSON Lines, one
  ``{"custom_id", "result"}`` per request, in the order the requests finished (not the order
  sent, as the API warns). A batch that has not ended answers 404 here; an unknown id answers
  404 everywhere.

Timing, on the virtual clock: a batch ends ``processing_time`` seconds after it was created
(each request finishes at a seeded moment before that), unless a request expires: then
nothing ends before the 24-hour limit (:data:`BATCH_EXPIRY`), as a real batch runs until
its requests are done or its time is up.

Results, per request: ``succeeded`` (a ``Message`` whose text names the ``custom_id``),
``errored`` (the catalogue's exact error body, :data:`resilience.catalogue.ERRORS`),
``expired`` or ``canceled``. Each request's planned result is the first of:

1. the next outcome queued for its ``custom_id`` with :meth:`FakeBatches.plan`;
2. the same error as last time, when its last result was an error the catalogue calls not
   retryable (``invalid_request_error``, ...) and its ``params`` are unchanged: a broken
   request stays broken until you fix it;
3. a draw from ``rates``, seeded by the fake's seed, the ``custom_id`` and how many times it
   was sent before (so a resubmission draws afresh, and order does not matter);
4. ``succeeded``.

Nothing here deduplicates: the same ``custom_id`` sent in two batches is processed twice, as
by the API. :attr:`FakeBatches.submitted` and :attr:`FakeBatches.succeeded` count per
``custom_id``, so a test can tell a resubmission loop that repeats work from one that does
not; each :class:`BatchRecord` keeps the times it was polled.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anthropic
import httpx

from ..catalogue import ERRORS
from . import bridge, responses

if TYPE_CHECKING:
    from .fake import FakeClaude

__all__ = ["BATCH_EXPIRY", "BatchItem", "BatchRecord", "FakeBatches", "PollLimitError"]

BATCH_EXPIRY = 86_400.0
"""Seconds from a batch's creation to its ``expires_at``: 24 hours, as the API documents."""

_RESULTS = ("succeeded", "expired")
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PATH = re.compile(r"^/v1/messages/batches(?:/(?P<batch_id>[^/]+))?(?P<tail>/cancel|/results)?$")


class PollLimitError(anthropic.AnthropicError, AssertionError):
    """A batch was retrieved more than ``poll_limit`` times: a polling loop that never waits.

    An ``anthropic.AnthropicError``, so the SDK neither wraps nor retries it.
    """


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request in a batch, and what the simulation planned for it.

    Attributes:
        custom_id: the request's ``custom_id``.
        params: its ``params`` (the Messages API parameters).
        outcome: ``"succeeded"``, ``"expired"`` or a catalogue error name.
        finish: the virtual time its processing ends (``inf`` for an expired request).
        attempt: 1 the first time this ``custom_id`` was sent to this fake, 2 the next, ...
    """

    custom_id: str
    params: Mapping[str, Any]
    outcome: str
    finish: float
    attempt: int


@dataclass(slots=True)
class BatchRecord:
    """One batch as the simulation holds it.

    Attributes:
        id: its id (``msgbatch_fake_000001``, ...).
        number: 1 for the first batch created, 2 for the next, ...
        created: the virtual time it was created.
        items: its requests, in the order sent.
        ends: when processing ends unless it is cancelled.
        cancel_time: how long a cancel takes to finish.
        cancel_at: when a cancel was asked for, or None.
        polls: the virtual time of every retrieve (``results()`` retrieves first, too).
    """

    id: str
    number: int
    created: float
    items: tuple[BatchItem, ...]
    ends: float
    cancel_time: float
    cancel_at: float | None = None
    polls: list[float] = field(default_factory=list)

    @property
    def custom_ids(self) -> tuple[str, ...]:
        """The ``custom_id`` of each request, in the order sent."""
        return tuple(item.custom_id for item in self.items)

    @property
    def ended_at(self) -> float:
        """When processing ends (or ended): earlier than :attr:`ends` after a cancel."""
        if self.cancel_at is None:
            return self.ends
        return min(self.ends, self.cancel_at + self.cancel_time)

    def status(self, now: float) -> str:
        """``processing_status`` at virtual time ``now``."""
        if now >= self.ended_at:
            return "ended"
        return "in_progress" if self.cancel_at is None else "canceling"

    def result(self, item: BatchItem) -> str:
        """The final ``result.type`` of ``item``, or its error name when it errored."""
        if item.finish > self.ended_at:
            return "canceled" if self.cancel_at is not None else "expired"
        return item.outcome

    def results(self) -> dict[str, str]:
        """Each ``custom_id``'s final result (``succeeded``, an error name, ``expired``,
        ``canceled``), as it is or will be once the batch has ended."""
        return {item.custom_id: self.result(item) for item in self.items}

    @property
    def noticed(self) -> float | None:
        """The first poll at or after the end: when a poller learned the batch had ended."""
        return next((t for t in self.polls if t >= self.ended_at), None)


class FakeBatches:
    """The Message Batches API, simulated on ``api``'s router and clock (module docstring).

    Args:
        api: the :class:`~resilience.testing.FakeClaude` whose router and clock to use.
        processing_time: seconds from creation until a batch ends, ``0 < t <= 86400``.
        cancel_time: seconds a cancel takes to finish (``canceling`` meanwhile), ``>= 0``.
        rates: the chance of each result per request, e.g. ``{"api_error": 0.1,
            "expired": 0.05}``: keys are ``"expired"`` or catalogue error names; each rate
            in ``[0, 1]``, their sum at most 1; the rest succeed.
        poll_limit: raise :class:`PollLimitError` on a batch's retrieve beyond this many
            (None: no limit), so a loop that polls without waiting fails fast.

    Attributes:
        batches: every batch created, in order (:class:`BatchRecord`).
        submitted: how many times each ``custom_id`` was sent in a batch.
    """

    def __init__(self, api: FakeClaude, *, processing_time: float = 3600.0,
                 cancel_time: float = 60.0, rates: Mapping[str, float] | None = None,
                 poll_limit: int | None = None) -> None:
        self._api = api
        self.processing_time = _seconds("processing_time", processing_time, BATCH_EXPIRY,
                                        positive=True)
        self.cancel_time = _seconds("cancel_time", cancel_time, math.inf)
        self.rates = _rates(rates)
        if poll_limit is not None and (isinstance(poll_limit, bool)
                                       or not isinstance(poll_limit, int)):
            raise TypeError(f"poll_limit must be an int or None, got {poll_limit!r}")
        if poll_limit is not None and poll_limit < 1:
            raise ValueError(f"poll_limit must be >= 1 (or None), got {poll_limit!r}")
        self.poll_limit = poll_limit
        self.batches: list[BatchRecord] = []
        self.submitted: Counter[str] = Counter()
        self._plans: dict[str, deque[str]] = {}
        self._broken: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        api.router.route(path__regex=_PATH.pattern).mock(side_effect=self._answer)

    def plan(self, custom_id: str, *outcomes: str) -> None:
        """Queue results for ``custom_id``'s next submissions, one per submission.

        Args:
            custom_id: the request's ``custom_id``.
            *outcomes: ``"succeeded"``, ``"expired"`` or catalogue error names, e.g.
                ``plan("q3", "api_error", "succeeded")``: errored once, then succeeds.
        """
        for name in outcomes:
            _check_outcome(name, "plan")
        with self._lock:
            self._plans.setdefault(custom_id, deque()).extend(outcomes)

    @property
    def succeeded(self) -> Counter[str]:
        """How many times each ``custom_id`` succeeded in a batch that has ended: the work
        done (and paid for). More than 1 is duplicated work."""
        now = self._api.clock.now()
        return Counter(item.custom_id for batch in self.batches if batch.status(now) == "ended"
                       for item in batch.items if batch.result(item) == "succeeded")

    def batch(self, batch_id: str) -> BatchRecord:
        """The record of batch ``batch_id`` (KeyError if there is none)."""
        for record in self.batches:
            if record.id == batch_id:
                return record
        raise KeyError(batch_id)

    # -- the routes ----------------------------------------------------------------------

    def _answer(self, request: httpx.Request, batch_id: str | None = None,
                tail: str | None = None) -> httpx.Response:
        request_id = f"req_fake_{len(self._api.calls):06d}"
        method = request.method
        if batch_id is None:  # (the path pattern gives no tail without an id)
            if method == "POST":
                return self._create(request, request_id)
            return _error(404, "not_found_error", f"No route for {method} {request.url.path}",
                          request_id)
        try:
            record = self.batch(batch_id)
        except KeyError:
            return _error(404, "not_found_error", f"No Message Batch {batch_id!r}", request_id)
        if tail is None and method == "GET":
            return self._retrieve(record, request_id)
        if tail == "/cancel" and method == "POST":
            with self._lock:
                if record.status(self._api.clock.now()) == "in_progress":
                    record.cancel_at = self._api.clock.now()
            return _json(self._describe(record), request_id)
        if tail == "/results" and method == "GET":
            return self._results(record, request_id)
        return _error(404, "not_found_error", f"No route for {method} {request.url.path}",
                      request_id)

    def _create(self, request: httpx.Request, request_id: str) -> httpx.Response:
        try:
            body = json.loads(request.content)
        except ValueError:
            body = None
        problem = _check_requests(body)
        if problem is not None:
            return _error(400, "invalid_request_error", problem, request_id)
        now = self._api.clock.now()
        with self._lock:
            number = len(self.batches) + 1
            items = tuple(self._item(entry, now) for entry in body["requests"])
            expired = any(item.outcome == "expired" for item in items)
            record = BatchRecord(f"msgbatch_fake_{number:06d}", number, now, items,
                                 now + (BATCH_EXPIRY if expired else self.processing_time),
                                 self.cancel_time)
            self.batches.append(record)
        return _json(self._describe(record), request_id)

    def _item(self, entry: Mapping[str, Any], now: float) -> BatchItem:
        """Plan one request's result (the lock is held)."""
        custom_id, params = entry["custom_id"], entry["params"]
        self.submitted[custom_id] += 1
        attempt = self.submitted[custom_id]
        draws = random.Random(f"fake-batches:{self._api.seed}:{custom_id}:{attempt}")
        chance, moment = draws.random(), draws.random()
        fingerprint = json.dumps(params, sort_keys=True, default=str)
        plan = self._plans.get(custom_id)
        broken = self._broken.get(custom_id)
        if plan:
            outcome = plan.popleft()
        elif broken is not None and broken[0] == fingerprint:
            outcome = broken[1]
        else:
            outcome = _draw(self.rates, chance)
        if outcome in ERRORS and not ERRORS[outcome].retryable:
            self._broken[custom_id] = (fingerprint, outcome)
        else:
            self._broken.pop(custom_id, None)
        finish = math.inf if outcome == "expired" else (
            now + self.processing_time * (1.0 - moment))
        return BatchItem(custom_id, params, outcome, finish, attempt)

    def _retrieve(self, record: BatchRecord, request_id: str) -> httpx.Response:
        with self._lock:
            record.polls.append(self._api.clock.now())
            polls = len(record.polls)
        if self.poll_limit is not None and polls > self.poll_limit:
            raise PollLimitError(
                f"{record.id} was retrieved {polls} times (poll_limit={self.poll_limit}): "
                "wait between polls (clock.sleep), with backoff")
        return _json(self._describe(record), request_id)

    def _describe(self, record: BatchRecord) -> dict[str, Any]:
        """The ``MessageBatch`` object, as the API shapes it, at the current time."""
        now = self._api.clock.now()
        status = record.status(now)
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if status == "ended":
            for item in record.items:
                result = record.result(item)
                counts["errored" if result in ERRORS else result] += 1
        else:
            counts["processing"] = len(record.items)
        ended = status == "ended"
        return {
            "id": record.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": responses.rfc3339(record.created),
            "expires_at": responses.rfc3339(record.created + BATCH_EXPIRY),
            "ended_at": responses.rfc3339(record.ended_at) if ended else None,
            "cancel_initiated_at": (None if record.cancel_at is None
                                    else responses.rfc3339(record.cancel_at)),
            "archived_at": None,
            "results_url": (f"{bridge.API_URL}/v1/messages/batches/{record.id}/results"
                            if ended else None),
        }

    def _results(self, record: BatchRecord, request_id: str) -> httpx.Response:
        if record.status(self._api.clock.now()) != "ended":
            return _error(404, "not_found_error",
                          f"Results of {record.id} are not available until it has ended",
                          request_id)
        order = sorted(range(len(record.items)),
                       key=lambda i: (min(record.items[i].finish, record.ended_at), i))
        lines = [json.dumps({"custom_id": record.items[i].custom_id,
                             "result": self._result_body(record, i)}) for i in order]
        return httpx.Response(200, headers={"content-type": "application/binary",
                                            "request-id": request_id},
                              content=("\n".join(lines) + "\n").encode())

    def _result_body(self, record: BatchRecord, index: int) -> dict[str, Any]:
        item = record.items[index]
        result = record.result(item)
        tag = f"{record.number:06d}_{index:05d}"
        if result in ERRORS:
            return {"type": "errored", "error": ERRORS[result].body(f"req_fake_batch_{tag}")}
        if result != "succeeded":
            return {"type": result}
        model = item.params.get("model")
        prompt = json.dumps(item.params.get("messages", ""), default=str)
        message = responses.message_body(
            f"msg_fake_batch_{tag}", model if isinstance(model, str) else self._api.model,
            f"Answer to {item.custom_id}.", responses.estimate_tokens(prompt))
        return {"type": "succeeded", "message": message}


def _seconds(name: str, value: object, most: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    low_ok = value > 0 if positive else value >= 0
    if not (low_ok and value <= most and not math.isnan(value)) or value == math.inf:
        bound = "> 0" if positive else ">= 0"
        top = f" and <= {most:g}" if most < math.inf else " and finite"
        raise ValueError(f"{name} must be {bound}{top} seconds, got {value!r}")
    return float(value)


def _check_outcome(name: object, where: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{where}: outcomes are names (str), got {name!r}")
    if name not in _RESULTS and name not in ERRORS:
        raise ValueError(f"{where}: unknown outcome {name!r}; use 'succeeded', 'expired' or an "
                         "error name from resilience.catalogue.ERRORS ('canceled' comes from "
                         "cancelling a batch)")


def _rates(rates: Mapping[str, float] | None) -> dict[str, float]:
    if rates is None:
        return {}
    if not isinstance(rates, Mapping):
        raise TypeError(f"rates must be a mapping of outcome name to chance, got {rates!r}")
    checked: dict[str, float] = {}
    for name, rate in rates.items():
        _check_outcome(name, "rates")
        if name == "succeeded":
            raise ValueError("rates: give the failures; the requests left over succeed")
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise TypeError(f"rates[{name!r}] must be a number, got {rate!r}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rates[{name!r}] must be in [0, 1], got {rate!r}")
        checked[name] = float(rate)
    if sum(checked.values()) > 1.0 + 1e-12:
        raise ValueError(f"rates must add up to at most 1, got {sum(checked.values()):g}")
    return checked


def _draw(rates: Mapping[str, float], chance: float) -> str:
    total = 0.0
    for name, rate in rates.items():
        total += rate
        if chance < total:
            return name
    return "succeeded"


def _check_requests(body: object) -> str | None:
    """What is wrong with a create body, as the API's 400 would say; None if nothing."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "requests: a batch needs at least one request"
    seen: set[str] = set()
    for index, entry in enumerate(requests):
        custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            return (f"requests.{index}.custom_id: 1 to 64 letters, digits, '-' or '_' "
                    f"required, got {custom_id!r}")
        if custom_id in seen:
            return f"requests.{index}.custom_id: {custom_id!r} is not unique in the batch"
        seen.add(custom_id)
        if not isinstance(entry.get("params"), dict):
            return f"requests.{index}.params: an object is required"
    return None


def _json(body: Mapping[str, Any], request_id: str) -> httpx.Response:
    return httpx.Response(200, json=body, headers={"request-id": request_id})


def _error(status: int, error_type: str, message: str, request_id: str) -> httpx.Response:
    body = {"type": "error", "error": {"type": error_type, "message": message},
            "request_id": request_id}
    return httpx.Response(status, json=body, headers={"request-id": request_id})
