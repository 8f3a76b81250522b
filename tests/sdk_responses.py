"""Build real anthropic SDK exceptions from real HTTP responses, for the core's tests.

The SDK picks its exception class itself (from the status and ``error.details.error_code``),
so the tests see exactly what an application sees. No network: an ``httpx2.MockTransport``
answers every request, and ``max_retries=0`` keeps the SDK from retrying.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2

from resilience import MODEL


def error_body(error_type: str = "api_error", message: str = "boom",
               error_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": "req_body"}


def sdk_error(status: int, body: object = None, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> BaseException:
    """Send one request through the real SDK to a canned response; return what it raised."""
    content = raw if raw is not None else json.dumps(
        body if body is not None else error_body()).encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        all_headers = {"content-type": "application/json", "request-id": "req_header"}
        all_headers.update(headers or {})
        return httpx2.Response(status, headers=all_headers, content=content)

    return _raised(handler)


def sdk_connection_error(exc: Exception) -> BaseException:
    """What the SDK raises when its transport raises ``exc``."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc

    return _raised(handler)


def _raised(handler: Callable[[httpx2.Request], httpx2.Response]) -> BaseException:
    """Send one request through the SDK (no retries) to ``handler``; return what it raised."""
    client = anthropic.Anthropic(
        api_key="test-key-not-real", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    try:
        client.messages.create(model=MODEL, max_tokens=16,
                               messages=[{"role": "user", "content": "hi"}])
    except Exception as e:
        return e
    raise AssertionError("the request did not raise")
