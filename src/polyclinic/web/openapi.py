"""Error responses as the OpenAPI schema shows them: always the error envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from litestar.openapi import ResponseSpec

from polyclinic.web.envelope import ErrorEnvelope

_DESCRIPTIONS = {
    400: "The request could not be read (a body that is not JSON, not UTF-8 or nested too "
    "deep, a query or path parameter that is invalid); `errors` names the parameter",
    401: "No valid access token",
    402: "The clinic's plan or subscription does not allow this; the message says what to change",
    403: "Not allowed, or the clinic is suspended",
    404: "No such record, or no clinic at this address",
    409: "Conflicts with the current state (taken, already done)",
    413: "The request body is larger than this address takes",
    422: "Invalid fields; `errors` names each one",
    429: "Too many requests or failed attempts; the message says when to try again",
    500: "Internal error; the message carries the request id",
    502: "A provider (Stripe, a messaging provider, AWS) refused or could not be reached",
    503: "Not available now: not configured on this platform, or the clinic's share of the "
    "service is busy (`Retry-After` says when to try again)",
}


def describe_error(status_code: int) -> str:
    return _DESCRIPTIONS[status_code]


def error_spec(status_code: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=ErrorEnvelope,
        description=describe_error(status_code),
        generate_examples=False,
    )


def error_responses(*status_codes: int) -> dict[int, ResponseSpec]:
    """The listed errors, plus 500; a route that reads input (400) can also refuse it (422)."""
    if 400 in status_codes and 422 not in status_codes:
        status_codes = (*status_codes, 422)
    return {code: error_spec(code) for code in (*status_codes, 500)}


# 403: a super-admin held to two-factor sign-in who has not enrolled yet.
PLATFORM_READ = error_responses(400, 401, 403, 404)
PLATFORM_WRITE = error_responses(400, 401, 403, 404, 409, 422)
CLINIC_PUBLIC = error_responses(403, 404, 503)


T = TypeVar("T", bound=type)


def published_as(module: str) -> Callable[[T], T]:
    """Keep a response type's public schema name when its code moves.

    The OpenAPI component of an enveloped type (`Envelope[UserOut]`) is named after the
    module the type is defined in; clients generated from the document use those names, so a
    type that moves keeps naming the module it was first published from. The module holding
    such a type does not postpone its annotations (no `from __future__ import annotations`):
    they are resolved where the type is defined, not in the module it is named after.
    """

    def pin(cls: T) -> T:
        cls.__module__ = module
        return cls

    return pin
