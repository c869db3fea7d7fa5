"""Error responses as the OpenAPI schema shows them: always the error envelope."""

from __future__ import annotations

from litestar.openapi import ResponseSpec

from polyclinic.web.envelope import ErrorEnvelope

_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "No valid access token",
    402: "The clinic's plan or subscription does not allow this; the message says what to change",
    403: "Not allowed, or the clinic is suspended",
    404: "No such record, or no clinic at this address",
    409: "Conflicts with the current state (taken, already done)",
    422: "Invalid fields; `errors` names each one",
    429: "Too many requests or failed attempts; the message says when to try again",
    500: "Internal error; the message carries the request id",
    502: "A payment provider refused or could not be reached; nothing was changed",
    503: "Not available yet, or not configured on this platform",
}


def error_responses(*status_codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(
            data_container=ErrorEnvelope, description=_DESCRIPTIONS[code], generate_examples=False
        )
        for code in (*status_codes, 500)
    }


PLATFORM_READ = error_responses(400, 401, 404)
PLATFORM_WRITE = error_responses(400, 401, 404, 409, 422)
CLINIC_PUBLIC = error_responses(403, 404, 503)
