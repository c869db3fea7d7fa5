"""Errors a person can act on; the web layer turns each into the error envelope."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str | None
    message: str


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class InvalidInput(DomainError):
    status_code = 422


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class Unavailable(DomainError):
    status_code = 503


class UpstreamFailed(DomainError):
    """A provider (Stripe, a messaging service) refused or could not be reached."""

    status_code = 502
