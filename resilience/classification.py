"""Classification: what went wrong, and is it worth trying again?

:func:`classify` turns anything that can go wrong in a Claude call into a :class:`Verdict`:
an ``anthropic`` exception, an HTTP response (httpx2 or httpx), a bare status code, or any
other exception. It never raises on malformed input: an HTML page from a proxy, an empty
body or a garbage ``retry-after`` header still get a verdict.

The rules, in order:

1. ``CancelledError``, ``KeyboardInterrupt``, ``SystemExit``: category ``cancelled``, never
   retryable. Programming errors (``TypeError``, ``ValueError``, ...): never retryable.
2. A response's ``x-should-retry: true|false`` header overrides everything below.
3. A spend-limit ``error.details.error_code`` is not retryable (whatever the status).
4. Status: 408, 409, 429 and every status >= 500 but 501 are retryable; other 4xx are not.
5. An error inside a 200 stream (``status_code == 200``) is judged by its ``error.type``:
   ``overloaded_error`` mid-stream is as retryable as a 529.
6. Connection errors and timeouts (SDK, httpx2/httpx, builtin) are retryable.

This module imports neither ``anthropic`` nor ``httpx2``: it recognises their objects by
their attributes, so production code pays nothing for the SDK until it uses it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalogue import (
    ADVICE,
    RETRYABLE_STATUSES,
    SPEND_LIMIT_CODES,
    TYPE_CATEGORIES,
    category_for_status,
)
from .errors import CircuitOpenError

__all__ = ["Verdict", "classify", "parse_retry_after"]

_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error",
                              "timeout_error"})
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
        retry_after: seconds the server asked us to wait, or None.
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


def parse_retry_after(headers: Mapping[str, str] | Any, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (preferred) or ``retry-after``, else None.

    ``retry-after`` may be seconds (float allowed) or an HTTP date, read against ``now``
    (Unix seconds; the wall clock by default). Garbage, negative, infinite or absent values
    give None. Header names are matched without regard to case.
    """
    try:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    except Exception:
        return None
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        value = _finite(raw_ms)
        if value is not None and value >= 0:
            return value / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    value = _finite(raw)
    if value is None:
        try:
            parsed = email.utils.parsedate_tz(raw)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is None:
            return None
        value = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    return value if value >= 0 else None


def _finite(text: str) -> float | None:
    try:
        value = float(text.strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _error_fields(body: object) -> tuple[str | None, str | None]:
    """``(error.type, error.details.error_code)`` from a decoded body, tolerating any shape."""
    if not isinstance(body, Mapping):
        return None, None
    error = body.get("error")
    if not isinstance(error, Mapping):
        return None, None
    error_type = error.get("type")
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, Mapping) else None
    return (error_type if isinstance(error_type, str) else None,
            code if isinstance(code, str) else None)


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
    error_type, error_code = _error_fields(body)
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
    if status is None or 200 <= status <= 299:
        # An error event inside a stream that began with 200: only error.type says what it is.
        category = TYPE_CATEGORIES.get(error_type or "", "stream_error")
        retryable = error_type in _RETRYABLE_TYPES
    elif error_code in SPEND_LIMIT_CODES:
        category, retryable = "spend_limit", False
    else:
        category = category_for_status(status)
        retryable = status in RETRYABLE_STATUSES or (status >= 500 and status != 501)
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


def _should_retry_header(headers: Any) -> bool | None:
    if headers is None:
        return None
    try:
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
