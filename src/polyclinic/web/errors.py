"""Exception handlers: every error leaves in the envelope, and nothing internal leaks."""

from __future__ import annotations

import logging
import re
from typing import Any

from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFound
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY, HTTP_500_INTERNAL_SERVER_ERROR

from polyclinic.errors import DomainError
from polyclinic.web.envelope import ErrorEnvelope, ErrorItem
from polyclinic.web.fairness import TOO_SLOW, statement_timed_out
from polyclinic.web.request_id import request_id

logger = logging.getLogger("polyclinic.errors")

_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_GENERIC_MESSAGES = {
    404: "Nothing is here: check the address",
    405: "This method is not allowed on this address",
}


def error_response(
    status_code: int, message: str, errors: list[ErrorItem] | None = None
) -> Response:
    return Response(
        content=ErrorEnvelope(status_code=status_code, message=message, errors=errors or []),
        status_code=status_code,
        media_type=MediaType.JSON,
    )


def _domain_error(_: Request, exc: DomainError) -> Response:
    items = [ErrorItem(field=e.field, message=e.message) for e in exc.errors]
    return error_response(exc.status_code, exc.message, items)


def _validation_items(extra: Any) -> list[ErrorItem]:
    items = []
    for entry in extra if isinstance(extra, list) else []:
        if not isinstance(entry, dict):
            continue
        message = str(entry.get("message", "invalid value"))
        field = entry.get("key")
        if missing := _MISSING_FIELD.search(message):
            field, message = missing.group(1), "is required"
        elif "matching regex" in message:
            message = "is not in the expected format"
        items.append(ErrorItem(field=field, message=message))
    return items


def _http_exception(_: Request, exc: HTTPException) -> Response:
    if isinstance(exc, ValidationException):
        items = _validation_items(exc.extra)
        if items:
            return error_response(
                HTTP_422_UNPROCESSABLE_ENTITY, "The request has invalid fields", items
            )
    if exc.status_code >= 500:
        return error_response(exc.status_code, "The service could not complete the request")
    message = (
        _GENERIC_MESSAGES.get(exc.status_code)
        if exc.detail in ("Not Found", "Method Not Allowed")
        else None
    )
    return error_response(exc.status_code, message or exc.detail)


def _not_found(_: Request, exc: RepositoryNotFound) -> Response:
    return error_response(404, "No such record")


def _internal(request: Request, exc: Exception) -> Response:
    if statement_timed_out(exc):
        logger.warning("statement timeout (request %s)", request_id(request.scope))
        response = error_response(503, TOO_SLOW)
        response.headers["Retry-After"] = "1"
        return response
    logger.exception("unhandled error (request %s)", request_id(request.scope), exc_info=exc)
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR,
        f"Internal error; quote request id {request_id(request.scope)} when reporting it",
    )


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    DomainError: _domain_error,
    HTTPException: _http_exception,
    RepositoryNotFound: _not_found,
    Exception: _internal,
}
