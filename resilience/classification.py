"""Classification: what went wrong, and is it worth trying again?

:func:`classify` turns anything that can go wrong in a Claude call into a :class:`Verdict`:
an ``anthropic`` exception, an HTTP response (httpx2 or httpx), a bare status code, or any
other exception. It never raises on malformed input: an HTML page from a proxy, an empty
body or a garbage ``retry-after`` header still get a verdict.

The rules, in order:

1. ``CancelledError``, ``KeyboardInterrupt``, ``SystemExit``: category ``cancelled``, never
   retryable. Programming errors (``TypeError``, ``ValueError``, ...): never retryable.
2. A response's ``x-should-retry: true|false`` header overrides everything below.
3. A spend limit is never retryable, category ``spend_limit``: a spend-limit
   ``error.details.error_code`` (the usage tier's 429, whatever the status), or a 4xx whose
   ``error.message`` says "You have reached your specified ... API usage limits" (the 400 a
   limit you set answers with).
4. Status: 408, 409, 429 and every status >= 500 but 501 are retryable; other 4xx are not.
5. An error inside a 200 stream (``status_code == 200``) is judged by its ``error.type``:
   ``overloaded_error`` mid-stream is as retryable as a 529.
6. Connection errors and timeouts (SDK, httpx2/httpx, builtin) are retryable.

The retry verdicts of rules 4-6 are not written here: a category is retryable when the
catalogue lists it in :data:`~resilience.catalogue.RETRYABLE_CATEGORIES`, the one home of
the rule (``is_retryable_status`` and ``RETRYABLE_TYPES`` there derive from it too).

This module imports neither ``anthropic`` nor ``httpx2``: it recognises their objects by
their attributes, so production code pays nothing for the SDK until it uses it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalogue import (
    ADVICE,
    RETRYABLE_CATEGORIES,
    SPEND_LIMIT_CODES,
    TYPE_CATEGORIES,
    category_for_status,
    is_spend_limit_message,
)
from .errors import CircuitOpenError

__all__ = ["MAX_RETRY_AFTER", "RETRY_BUDGET_HEADER", "Verdict", "classify", "parse_retry_after"]

_PROGRAMMING_ERRORS = (TypeError, ValueError, AttributeError, LookupError, NameError,
                       AssertionError, NotImplementedError, ArithmeticError, ImportError)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`classify` concluded about one failure.

    Attributes:
        retryable: whether sending the same request again can succeed.
        category: a short name such as ``overloaded`` or ``invalid_request``.
        status: the HTTP status, or None (a connection error has none; a mid-stream error
            has 200).
        error_type: ``error.type`` from the body, if there was one.
        retry_after: seconds the server asked us to wait, read as the SDK reads them (see
            :func:`parse_retry_after`), or None.
        request_id: the ``request-id`` to quote to support, if any.
        advice: one sentence telling a person what to do.
        error_code: ``error.details.error_code``, if any.
    """

    retryable: bool
    category: str
    status: int | None = None
    error_type: str | None = None
    retry_after: float | None = None
    request_id: str | None = None
    advice: str = ""
    error_code: str | None = None

    def __str__(self) -> str:
        status = "" if self.status is None else f" {self.status}"
        kind = "retryable" if self.retryable else "not retryable"
        return f"{self.category}{status} ({kind})"


def _verdict(category: str, retryable: bool, **fields: Any) -> Verdict:
    return Verdict(retryable=retryable, category=category, advice=ADVICE[category], **fields)


MAX_RETRY_AFTER = 4_294_967.0
"""The longest ``retry-after`` the SDK honours, in seconds (about 49.7 days): it caps its
wait there because ``time.sleep`` refuses more than 2**32 ms on some platforms."""


def parse_retry_after(headers: Mapping[str, str] | Any, now: float | None = None) -> float | None:
    """Seconds the server asks you to wait, read as the SDK reads them; None for "not said".

    The rules are the SDK's own (``_parse_retry_after_header`` and
    ``_calculate_retry_timeout`` in ``anthropic/_base_client.py``):

    1. ``retry-after-ms`` (milliseconds), if it is a number, decides alone; otherwise
    2. ``retry-after``: seconds (a float is allowed), or else an HTTP date read against ``now``
       (Unix seconds; the wall clock by default).
    3. The value counts only if it is > 0: zero, negative values, past dates and NaN give None
       (the SDK then falls back to its own backoff). It is capped at
       :data:`MAX_RETRY_AFTER` (4,294,967 s), so ``inf`` or ``1e308`` give 4,294,967.0.

    Anything that cannot be parsed counts as absent and gives None: garbage, a date out of
    range (``Fri, 31 Dec 99999 23:59:59 GMT``), a header object that cannot be read. (The
    SDK 2.15.0 itself raises ``ValueError`` on such a date instead of retrying; this function
    never raises.) So for a response the SDK retries, a number here is exactly the wait the
    SDK takes (up to the time that passes between the two readings of a date), and None means
    the SDK waits its own jittered backoff instead. Header names match without regard to case.
    """
    try:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    except Exception:
        return None
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        value = _number(raw_ms)
        if value is not None:
            return _wait(value / 1000.0)
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    value = _number(raw)
    if value is None:
        value = _seconds_until(raw, time.time() if now is None else now)
    return None if value is None else _wait(value)


def _number(text: str) -> float | None:
    """``float(text)`` as the SDK parses it (``nan`` and ``inf`` included), or None."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _seconds_until(date: str, now: float) -> float | None:
    """Seconds from ``now`` to an HTTP date, or None if it is not a date Python can place."""
    try:
        parsed = email.utils.parsedate_tz(date)
        return None if parsed is None else float(email.utils.mktime_tz(parsed) - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _wait(value: float) -> float | None:
    """The SDK's reading of a parsed value: used only if > 0, and at most 4,294,967 s."""
    if not value > 0:  # also NaN
        return None
    return min(value, MAX_RETRY_AFTER)


def _error_fields(body: object) -> tuple[str | None, str | None, str | None]:
    """``(error.type, error.details.error_code, error.message)`` from a decoded body,
    tolerating any shape (a field that is missing or not a string gives None)."""
    if not isinstance(body, Mapping):
        return None, None, None
    error = body.get("error")
    if not isinstance(error, Mapping):
        return None, None, None
    error_type = error.get("type")
    message = error.get("message")
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, Mapping) else None
    return (error_type if isinstance(error_type, str) else None,
            code if isinstance(code, str) else None,
            message if isinstance(message, str) else None)


def _decode(response: Any) -> object:
    try:
        content = response.content
    except Exception:  # a streaming response not yet read, or a closed one
        return None
    if not content:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def _from_http(status: int | None, headers: Mapping[str, str] | Any, body: object,
               request_id: str | None = None) -> Verdict:
    """The heart of the rules for anything that carries a status, headers and a body."""
    error_type, error_code, message = _error_fields(body)
    try:
        header_id = headers.get("request-id") if headers is not None else None
    except Exception:
        header_id = None
    fields: dict[str, Any] = {
        "status": status,
        "error_type": error_type,
        "error_code": error_code,
        "retry_after": parse_retry_after(headers) if headers is not None else None,
        "request_id": request_id or header_id or _body_request_id(body),
    }
    if error_code in SPEND_LIMIT_CODES:  # whatever the status: a batch item, a stream too
        category = "spend_limit"
    elif status is None or 200 <= status <= 299:
        # An error event inside a stream that began with 200: only error.type says what it is.
        category = TYPE_CATEGORIES.get(error_type or "", "stream_error")
    elif 400 <= status <= 499 and is_spend_limit_message(message):
        category = "spend_limit"
    else:
        category = category_for_status(status)
    retryable = category in RETRYABLE_CATEGORIES
    override = _should_retry_header(headers)
    if override is not None:
        retryable = override
    return _verdict(category, retryable, **fields)


def _body_request_id(body: object) -> str | None:
    if isinstance(body, Mapping):
        value = body.get("request_id")
        if isinstance(value, str):
            return value
    return None


RETRY_BUDGET_HEADER = "x-resilience-retry-budget"
"""The stop sign :class:`resilience.middleware.BudgetMiddleware` puts on a response whose
retry the budget refused: ``empty`` (or ``empty; x-should-retry was true`` when the server
had sent that header), beside the ``x-should-retry: false`` that stops the SDK. The
classifier judges such a response by what the *server* said, so a 529 the budget stopped
is still a retryable overload (worth a fallback, a breaker failure)."""


def _should_retry_header(headers: Any) -> bool | None:
    """The server's ``x-should-retry``: True, False or None (absent or anything else)."""
    if headers is None:
        return None
    try:
        marker = headers.get(RETRY_BUDGET_HEADER)
        if marker is not None:  # our own stop sign, not the server's word
            value: object = str(marker).partition("x-should-retry was ")[2] or None
        else:
            value = headers.get("x-should-retry")
    except Exception:
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _class_names(x: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(x).__mro__}


def _is_from(x: object, *modules: str) -> bool:
    return any(cls.__module__.split(".")[0] in modules for cls in type(x).__mro__)


def classify(x: object) -> Verdict:
    """Classify an SDK exception, an HTTP response, a status code or any exception.

    >>> classify(529)
    Verdict(retryable=True, category='overloaded', status=529, ...)

    Never raises: an input it cannot read gets category ``unknown``, not retryable.
    """
    try:
        return _classify(x)
    except Exception:  # the promise: a malformed input is classified, never a crash
        return _verdict("unknown", False)


def _classify(x: object) -> Verdict:
    if isinstance(x, bool):
        return _verdict("unknown", False)
    if isinstance(x, int):
        return _from_http(x, None, None)
    if isinstance(x, BaseException):
        return _classify_exception(x)
    if hasattr(x, "status_code") and hasattr(x, "headers"):  # httpx2.Response, httpx.Response
        status = x.status_code
        return _from_http(status if isinstance(status, int) else None, x.headers, _decode(x))
    return _verdict("unknown", False)


def _classify_exception(e: BaseException) -> Verdict:
    if isinstance(e, asyncio.CancelledError | KeyboardInterrupt | SystemExit | GeneratorExit):
        return _verdict("cancelled", False)
    from_sdk = _is_from(e, "anthropic")
    names = _class_names(e)
    if from_sdk and "APIStatusError" in names:
        response = getattr(e, "response", None)
        status = getattr(e, "status_code", None)
        headers = getattr(response, "headers", None)
        body = getattr(e, "body", None)
        return _from_http(status if isinstance(status, int) else None, headers, body,
                          getattr(e, "request_id", None))
    if from_sdk:
        if "APITimeoutError" in names:
            return _verdict("timeout", True)
        if "APIConnectionError" in names:
            return _verdict("connection", True)
        if "APIResponseValidationError" in names:
            response = getattr(e, "response", None)
            return _verdict("invalid_response", False,
                            status=getattr(e, "status_code", None),
                            request_id=_header(response, "request-id"))
        if "RetryableError" in names:
            return _verdict("unknown", True)
    if _is_from(e, "httpx", "httpx2", "httpcore", "httpcore2"):
        if "TimeoutException" in names:
            return _verdict("timeout", True)
        if "TransportError" in names:
            return _verdict("connection", True)
        if "HTTPStatusError" in names:
            return _classify(getattr(e, "response", None))
    if isinstance(e, CircuitOpenError):
        return _verdict("circuit_open", False, retry_after=e.retry_in)
    if isinstance(e, TimeoutError):
        return _verdict("timeout", True)
    if isinstance(e, ConnectionError):
        return _verdict("connection", True)
    if isinstance(e, _PROGRAMMING_ERRORS):
        return _verdict("programming_error", False)
    return _verdict("unknown", False)


def _header(response: Any, name: str) -> str | None:
    try:
        value = response.headers.get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None
