"""Exception handlers: every error leaves in the envelope, and nothing internal leaks."""

from __future__ import annotations

import logging
import re
from typing import Any

from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFound
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import ParameterKwarg
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

from polyclinic.errors import DomainError
from polyclinic.web.envelope import ErrorEnvelope, ErrorItem
from polyclinic.web.fairness import TOO_SLOW, statement_timed_out
from polyclinic.web.request_id import request_id

logger = logging.getLogger("polyclinic.errors")

_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_MISSING_PARAMETER = re.compile(r"^Missing required \w+ parameter '([^']+)'")
_GENERIC_MESSAGES = {
    404: "Nothing is here: check the address",
    405: "This method is not allowed on this address",
}


def error_response(
    status_code: int,
    message: str,
    errors: list[ErrorItem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        content=ErrorEnvelope(status_code=status_code, message=message, errors=errors or []),
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _domain_error(_: Request, exc: DomainError) -> Response:
    items = [ErrorItem(field=e.field, message=e.message) for e in exc.errors]
    return error_response(exc.status_code, exc.message, items)


def field_message(message: str) -> str:
    """A schema's complaint about a field, without the pattern behind it."""
    return "is not in the expected format" if "matching regex" in message else message


def _wire_name(request: Request, key: Any) -> Any:
    """A parameter as the request spells it (`from`), not as the handler does (`from_`)."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    kwarg = parameter.kwarg_definition if parameter is not None else None
    if isinstance(kwarg, ParameterKwarg):
        return kwarg.query or kwarg.header or kwarg.cookie or kwarg.name or key
    return key


def _validation_items(request: Request, extra: Any) -> list[ErrorItem]:
    items = []
    for entry in extra if isinstance(extra, list) else []:
        if not isinstance(entry, dict):
            continue
        message = str(entry.get("message", "invalid value"))
        field = entry.get("key")
        if entry.get("source") != "body" and isinstance(field, str):
            field = _wire_name(request, field)
        if missing := _MISSING_FIELD.search(message):
            field, message = missing.group(1), "is required"
        else:
            message = field_message(message)
        items.append(ErrorItem(field=field, message=message))
    return items


def _from_body(extra: Any) -> bool:
    entries = extra if isinstance(extra, list) else []
    return any(isinstance(e, dict) and e.get("source") == "body" for e in entries)


def _http_exception(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, ValidationException):
        items = _validation_items(request, exc.extra)
        if items and _from_body(exc.extra):
            return error_response(
                HTTP_422_UNPROCESSABLE_ENTITY, "The request has invalid fields", items
            )
        if not items and (missing := _MISSING_PARAMETER.match(exc.detail)):
            items = [ErrorItem(field=missing.group(1), message="is required")]
        if items:  # a query, path or header parameter: the address itself is wrong
            return error_response(
                HTTP_400_BAD_REQUEST, "The request has an invalid parameter", items
            )
    if exc.status_code >= 500:
        return error_response(exc.status_code, "The service could not complete the request")
    if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = request.route_handler.resolve_request_max_body_size()
        return error_response(
            exc.status_code, f"The request body is larger than the {limit} bytes this address takes"
        )
    message = (
        _GENERIC_MESSAGES.get(exc.status_code)
        if exc.detail in ("Not Found", "Method Not Allowed")
        else None
    )
    return error_response(exc.status_code, message or exc.detail, headers=exc.headers)


def _not_found(_: Request, exc: RepositoryNotFound) -> Response:
    return error_response(404, "No such record")


def _internal(request: Request, exc: Exception) -> Response:
    if statement_timed_out(exc):
        logger.warning("statement timeout (request %s)", request_id(request.scope))
        return error_response(503, TOO_SLOW, headers={"Retry-After": "1"})
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
