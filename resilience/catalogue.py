"""The error catalogue: every error the Claude API sends, as data, in one place.

The classifier (:mod:`resilience.classification`), the simulated API
(:mod:`resilience.testing`), the notebooks' tables and the tests all read this module, so a
fact about an error is written once. Sources: the public error docs (status, ``error.type``)
and the installed ``anthropic`` SDK (which exception class it raises); ``tests/`` checks the
SDK class names against the SDK itself.

Four tables, and the rules derived from them:

* :data:`ERRORS`: one :class:`ErrorSpec` per error a learner meets, keyed by a name (for the
  documented errors the name is the ``error.type``).
* :data:`STATUS_CATEGORIES`: the category of any HTTP status, documented or not.
* :data:`RETRYABLE_CATEGORIES`: the categories worth a retry. It is the one home of the retry
  rule: :func:`is_retryable_status` ("408, 409, 429 and every status >= 500 except 501"),
  :data:`RETRYABLE_TYPES` and :attr:`ErrorSpec.retryable` are all derived from it.
* :data:`ADVICE`: one sentence per category telling a person what to do.

Spend limits come in two shapes (REFERENCE.md 2). A limit *you set* on an organization or
workspace answers **400** ``invalid_request_error``, recognisable only by its message ("You
have reached your specified ... API usage limits", :data:`SPEND_LIMIT_MESSAGE`). The usage
tier's monthly cap answers **429** ``rate_limit_error`` with ``error_code``
``enforced_spend_limit_reached`` (:data:`SPEND_LIMIT_CODES`) and no ``retry-after``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ADVICE",
    "ERRORS",
    "RETRYABLE_CATEGORIES",
    "RETRYABLE_STATUSES",
    "RETRYABLE_TYPES",
    "SPEND_LIMIT_CODES",
    "SPEND_LIMIT_MESSAGE",
    "STATUS_CATEGORIES",
    "TYPE_CATEGORIES",
    "ErrorSpec",
    "category_for_status",
    "is_retryable_status",
    "is_spend_limit_message",
]


ADVICE: Mapping[str, str] = MappingProxyType(
    {
        "invalid_request": "Fix the request (error.message names the field at fault); "
        "sending it again fails the same way.",
        "authentication": "Check the API key: it is missing, mistyped or revoked; "
        "no retry will fix it.",
        "billing": "Add credit or fix the payment method in the Console; "
        "retrying cannot help until billing is fixed.",
        "permission": "This key may not use this model or resource: "
        "use a key or workspace that has access.",
        "not_found": "Check the model id and the URL: a mistyped or retired model id "
        "answers 404.",
        "request_too_large": "Make the request smaller (the Messages limit is 32 MB): "
        "fewer or smaller images and documents, or the Files API.",
        "unprocessable": "The request is well-formed but cannot be processed: "
        "change its content, do not retry it.",
        "rate_limit": "Wait at least retry-after, then retry; pace requests with the "
        "anthropic-ratelimit-* headers to stay under the limit.",
        "spend_limit": "A spend limit was reached: raise the limit you set in the Console "
        "(a 400), or for the usage tier's monthly cap (a 429) wait for the 1st of the month "
        "or move up a tier; retrying cannot help.",
        "api_error": "A transient error on Anthropic's side: retry with jittered backoff.",
        "timeout": "The request took too long: retry with backoff, and stream long "
        "responses instead of waiting for one big answer.",
        "overloaded": "Anthropic's servers are overloaded: retry with jittered backoff, "
        "and fall back to a smaller model if the episode lasts.",
        "unavailable": "The service is briefly unavailable: retry with jittered backoff.",
        "bad_gateway": "A proxy between you and the API failed: retry with jittered backoff.",
        "server_error": "A server error: retry with jittered backoff.",
        "not_implemented": "The server does not support this request: retrying the same "
        "request will not help.",
        "request_timeout": "The server gave up waiting for the request: retry it.",
        "conflict": "The request conflicted with another change: retry it.",
        "precondition_failed": "A precondition of the request no longer holds: "
        "refresh what it depends on, then send it again.",
        "client_closed": "The client closed the request before the answer: "
        "check your own timeouts and cancellations.",
        "client_error": "The server refused this request: read error.message and fix it "
        "before sending it again.",
        "connection": "The network failed before an answer arrived: retry with "
        "jittered backoff (connections drop and recover).",
        "invalid_response": "The answer did not match the expected shape: log it with its "
        "request-id and report it; do not retry blindly.",
        "circuit_open": "The circuit breaker is open after repeated failures: wait for the "
        "next trial or use a fallback.",
        "stream_error": "The stream failed after it had started: decide what to do with the "
        "partial output, then restart or give up.",
        "cancelled": "The operation was cancelled or interrupted: let it end, never retry it.",
        "programming_error": "A bug in the calling code: fix it; a retry would fail again.",
        "unknown": "Unrecognised error: not retried; log it with its request-id and look.",
        "success": "No error.",
    }
)


RETRYABLE_CATEGORIES = frozenset(
    {
        "request_timeout",  # 408: the server gave up waiting; the request itself is fine
        "conflict",  # 409: a concurrent change; documented as retryable
        "rate_limit",  # 429 (not a spend limit): wait at least retry-after
        "api_error",  # 500
        "bad_gateway",  # 502
        "unavailable",  # 503
        "timeout",  # 504
        "overloaded",  # 529
        "server_error",  # any other status >= 500, except 501 (not_implemented)
        "connection",
    }
)
"""The categories worth a retry: the one home of the retry rule. Every other category
(``not_implemented`` for 501, ``spend_limit``, every other 4xx) is not."""


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One error as the API sends it, and what to do about it.

    Attributes:
        name: the catalogue key (the ``error.type`` for the documented errors).
        status: the HTTP status.
        error_type: ``error.type`` in the body.
        category: the classifier's category (a key of :data:`ADVICE`).
        sdk_class: the name of the ``anthropic`` exception the SDK raises for it.
        message: an example ``error.message``.
        headers: example headers beyond ``request-id`` and ``content-type``.
        error_code: ``error.details.error_code``, where the error has one.
        documented: listed in the API's public error table.
        proxy_html: sent by a proxy as an HTML page rather than a JSON error body.
    """

    name: str
    status: int
    error_type: str
    category: str
    sdk_class: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None
    documented: bool = True
    proxy_html: bool = False

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again can succeed (its category is in
        :data:`RETRYABLE_CATEGORIES`)."""
        return self.category in RETRYABLE_CATEGORIES

    @property
    def advice(self) -> str:
        """One sentence telling a person what to do."""
        return ADVICE[self.category]

    def body(self, request_id: str = "req_011CExample000000000000") -> dict[str, object]:
        """The JSON error body exactly as the API shapes it."""
        error: dict[str, object] = {"type": self.error_type, "message": self.message}
        if self.error_code is not None:
            error["details"] = {"error_code": self.error_code}
        return {"type": "error", "error": error, "request_id": request_id}


def _spec(*args: object, **kwargs: object) -> tuple[str, ErrorSpec]:
    spec = ErrorSpec(*args, **kwargs)  # type: ignore[arg-type]
    return spec.name, spec


ERRORS: Mapping[str, ErrorSpec] = MappingProxyType(
    dict(
        [
            # The API's documented errors, in status order (REFERENCE.md 2).
            _spec("invalid_request_error", 400, "invalid_request_error", "invalid_request",
                  "BadRequestError", "messages: field required"),
            _spec("authentication_error", 401, "authentication_error", "authentication",
                  "AuthenticationError", "invalid x-api-key"),
            _spec("billing_error", 402, "billing_error", "billing", "PaymentRequiredError",
                  "Your credit balance is too low to access the Anthropic API."),
            _spec("permission_error", 403, "permission_error", "permission",
                  "PermissionDeniedError",
                  "Your API key does not have permission to use the specified resource."),
            _spec("not_found_error", 404, "not_found_error", "not_found", "NotFoundError",
                  "model: claude-3-opus-20240229"),
            _spec("conflict_error", 409, "conflict_error", "conflict", "ConflictError",
                  "The resource was modified by another request; send the request again."),
            _spec("request_too_large", 413, "request_too_large", "request_too_large",
                  "ContentTooLargeError", "Request exceeds the maximum allowed number of bytes."),
            _spec("rate_limit_error", 429, "rate_limit_error", "rate_limit", "RateLimitError",
                  "This request would exceed the rate limit for your organization of "
                  "50 requests per minute.",
                  {"retry-after": "5"}),
            _spec("api_error", 500, "api_error", "api_error", "InternalServerError",
                  "Internal server error"),
            _spec("timeout_error", 504, "timeout_error", "timeout", "GatewayTimeoutError",
                  "Request timed out"),
            _spec("overloaded_error", 529, "overloaded_error", "overloaded", "OverloadedError",
                  "Overloaded"),
            # Variants of documented types, and errors met in the field.
            # A spend limit you set on an organization or workspace: a plain 400, known only
            # by its message.
            _spec("workspace_spend_limit", 400, "invalid_request_error", "spend_limit",
                  "BadRequestError",
                  "You have reached your specified workspace API usage limits. "
                  "You will regain access on 2027-01-01 at 00:00 UTC.",
                  documented=False),
            # The usage tier's monthly cap: a 429 with an error_code and no retry-after.
            _spec("spend_limit_reached", 429, "rate_limit_error", "spend_limit",
                  "EnforcedSpendLimitReachedError",
                  "Your organization has reached the monthly spend limit of its usage tier. "
                  "Access resumes at 00:00 UTC on the 1st of next month.",
                  error_code="enforced_spend_limit_reached", documented=False),
            _spec("unprocessable_entity", 422, "invalid_request_error", "unprocessable",
                  "UnprocessableEntityError", "The request could not be processed.",
                  documented=False),
            _spec("service_unavailable", 503, "api_error", "unavailable",
                  "ServiceUnavailableError", "Service unavailable", documented=False),
            _spec("bad_gateway", 502, "api_error", "bad_gateway", "InternalServerError",
                  "<html><body><h1>502 Bad Gateway</h1></body></html>", documented=False,
                  proxy_html=True),
        ]
    )
)
"""Every error the course and the simulated API produce, by name."""


TYPE_CATEGORIES: Mapping[str, str] = MappingProxyType(
    {spec.error_type: spec.category for spec in ERRORS.values() if spec.documented}
)
"""The category of each documented ``error.type`` (used for errors inside a 200 stream)."""

RETRYABLE_TYPES = frozenset(
    error_type for error_type, category in TYPE_CATEGORIES.items()
    if category in RETRYABLE_CATEGORIES
)
"""Documented ``error.type`` values worth a retry (for an error inside a 200 stream)."""

SPEND_LIMIT_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)
"""``error.details.error_code`` values that mean a spend limit, which no retry can lift."""

SPEND_LIMIT_MESSAGE = re.compile(r"you have reached your specified\b.*\busage limits?\b",
                                 re.IGNORECASE | re.DOTALL)
"""The ``error.message`` of the 400 a spend limit you set answers with ("You have reached
your specified workspace API usage limits. You will regain access on ...")."""

STATUS_CATEGORIES: Mapping[int, str] = MappingProxyType(
    {
        400: "invalid_request",
        401: "authentication",
        402: "billing",
        403: "permission",
        404: "not_found",
        408: "request_timeout",
        409: "conflict",
        412: "precondition_failed",
        413: "request_too_large",
        422: "unprocessable",
        429: "rate_limit",
        431: "request_too_large",
        499: "client_closed",
        500: "api_error",
        501: "not_implemented",
        502: "bad_gateway",
        503: "unavailable",
        504: "timeout",
        529: "overloaded",
    }
)
"""The category of each HTTP status the API or a proxy is known to send."""


def category_for_status(status: int) -> str:
    """The category of an HTTP status: its entry in :data:`STATUS_CATEGORIES`, else by class
    (any other status >= 500 is a ``server_error``, as the SDK treats it; 4xx
    ``client_error``; 2xx ``success``; anything else ``unknown``)."""
    category = STATUS_CATEGORIES.get(status)
    if category is not None:
        return category
    if status >= 500:
        return "server_error"
    if 400 <= status <= 499:
        return "client_error"
    if 200 <= status <= 299:
        return "success"
    return "unknown"


def is_retryable_status(status: int) -> bool:
    """Whether a response with this status is worth retrying: its category is in
    :data:`RETRYABLE_CATEGORIES`. That works out to 408, 409, 429 and every status >= 500
    except 501; retry on the rule, not on a hand list, which silently drops 529 and 520-524
    (REFERENCE.md 6)."""
    return category_for_status(status) in RETRYABLE_CATEGORIES


def is_spend_limit_message(message: object) -> bool:
    """Whether an ``error.message`` says a spend limit you set was reached
    (:data:`SPEND_LIMIT_MESSAGE`); False for anything that is not a string."""
    return isinstance(message, str) and SPEND_LIMIT_MESSAGE.search(message) is not None


RETRYABLE_STATUSES = frozenset(s for s in STATUS_CATEGORIES if s < 500 and is_retryable_status(s))
"""4xx statuses worth retrying (408, 409, 429), derived from :data:`RETRYABLE_CATEGORIES`. Every
status >= 500 is retryable too, except 501: use :func:`is_retryable_status`."""
