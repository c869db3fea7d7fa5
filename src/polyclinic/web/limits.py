"""Input limits, in one place: what a request may carry before any handler sees it.

- The body's size: Litestar's `request_max_body_size` (`MAX_REQUEST_BODY_BYTES`, set on the
  app; a route that needs more says so itself): 413.
- A JSON body must be UTF-8 and nest at most `MAX_JSON_DEPTH` arrays and objects, counted on
  the raw bytes before anything is decoded (400); no string in it may hold a NUL character,
  which PostgreSQL refuses (422 naming the field); and it must match the route's schema
  strictly: a boolean is `true` or `false`, a number is a number (422 naming the field).
- Query and path parameters hold no NUL character: 400 naming the parameter.
- One Host header: with two, which clinic is meant is a guess, so neither is taken (400).

Numbers are bounded where they are declared: `INT32_MAX` on schema fields stored in integer
columns, and the paging parameters (`web/paging.py`).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import msgspec
from litestar import Request
from litestar.config.app import AppConfig
from litestar.enums import RequestEncodingType, ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.params import BodyKwarg
from litestar.plugins import InitPluginProtocol, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.serialization import default_deserializer
from litestar.types import ASGIApp, Receive, Scope, Send

from polyclinic.errors import DomainError, FieldError, InvalidInput
from polyclinic.web.errors import field_message
from polyclinic.web.openapi import error_spec

INT32_MAX = 2**31 - 1  # the largest value of a PostgreSQL `integer` column
MAX_JSON_DEPTH = 32

# A JSON string, also one left open at the end or ending in a lone backslash: each is read
# once, never again from a later quote, so a hostile body costs one pass.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_OPENERS_CLOSERS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NUL_ESCAPE = re.compile(rb"\\u0000", re.IGNORECASE)
_PATH = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"^Object missing required field `(.+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(.+)`")


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects more than `limit` deep; strings skipped."""
    brackets = _STRING.sub(b"", body).translate(_OPENERS_CLOSERS, _NOT_BRACKETS)
    remaining = brackets
    # Each pass takes away the innermost pairs: balanced text `limit` deep is gone after
    # `limit` passes, whatever its length.
    for _ in range(limit):
        shorter = remaining.replace(b"()", b"")
        if len(shorter) == len(remaining):
            break
        remaining = shorter
    if not remaining:
        return False
    depth = 0  # too deep, or not balanced (then the parser refuses it): count
    for byte in brackets:
        depth += 1 if byte == 0x28 else -1
        if depth > limit:
            return True
    return False


def nul_field(value: Any, path: str = "") -> str | None:
    """The first field (`settings.host`, `items[2]`) whose string or key holds a NUL."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if "\x00" in key:
                return where
            if (found := nul_field(item, where)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := nul_field(item, f"{path}[{index}]")) is not None:
                return found
    return None


def _json_body_type(handler: HTTPRouteHandler) -> Any | None:
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    kwarg = field.kwarg_definition
    if isinstance(kwarg, BodyKwarg) and kwarg.media_type not in (RequestEncodingType.JSON, None):
        return None
    return field.annotation


def _strict_decoder(handler: HTTPRouteHandler) -> msgspec.json.Decoder[Any] | None:
    """The route's body schema, read strictly: no `0` for `false`, no `"5"` for `5`."""
    body_type = _json_body_type(handler)
    if body_type is None:
        return None
    hook = partial(default_deserializer, type_decoders=handler.resolve_type_decoders())
    try:
        return msgspec.json.Decoder(body_type, strict=True, dec_hook=hook)
    except TypeError:  # a type msgspec cannot read by itself: Litestar's own reading stands
        return None


def _invalid_field(error: msgspec.ValidationError) -> InvalidInput:
    text = str(error)
    at = _PATH.search(text)
    message = text[: at.start()] if at else text
    path = at.group(1).removeprefix(".") if at else ""
    field: str | None = path or None
    if missing := _MISSING.match(message):
        field, message = _join(path, missing.group(1)), "is required"
    elif unknown := _UNKNOWN.match(message):
        field, message = _join(path, unknown.group(1)), "is not a field of this request"
    return InvalidInput(
        "The request has invalid fields", [FieldError(field, field_message(message))]
    )


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_parameters(request: Request[Any, Any, Any]) -> None:
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise _bad_parameter(name.replace("\x00", ""))
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise _bad_parameter(name)


def _bad_parameter(name: str) -> DomainError:
    return DomainError(
        "The request has an invalid parameter",
        [FieldError(name, "must not contain a NUL character")],
    )


def _not_json(exc: msgspec.DecodeError) -> DomainError:
    return DomainError("The request body is not valid JSON", [FieldError(None, str(exc))])


async def check_request(
    request: Request[Any, Any, Any], decoder: msgspec.json.Decoder[Any] | None
) -> None:
    """Refuses what is out of bounds before the handler runs; `decoder` reads the route's
    JSON body strictly (None: the route takes no JSON body, or Litestar reads it alone)."""
    _check_parameters(request)
    if _json_body_type(request.route_handler) is None:  # type: ignore[arg-type]
        return
    body = await request.body()  # Litestar holds it to the size limit (413)
    if not body:
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise DomainError("The request body is not valid UTF-8") from None
    if nests_deeper_than(body, MAX_JSON_DEPTH):
        raise DomainError(
            f"The request body nests arrays and objects more than {MAX_JSON_DEPTH} deep"
        )
    if _NUL_ESCAPE.search(body):
        try:
            field = nul_field(msgspec.json.decode(body))
        except msgspec.DecodeError as exc:
            raise _not_json(exc) from None
        if field is not None:
            raise InvalidInput(
                "The request has invalid fields",
                [FieldError(field or None, "must not contain a NUL character")],
            )
    if decoder is None:
        return
    try:
        decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid_field(exc) from None
    except msgspec.DecodeError as exc:
        raise _not_json(exc) from None


class SingleHostMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if sum(1 for name, _ in scope.get("headers", []) if name == b"host") > 1:
            raise DomainError(
                "The request names more than one host", [FieldError("host", "send it once")]
            )
        await next_app(scope, receive, send)


class InputLimits(InitPluginProtocol, ReceiveRoutePlugin):
    """Wires the checks above into the app, and documents the answers they give."""

    def __init__(self) -> None:
        self.decoders: dict[HTTPRouteHandler, msgspec.json.Decoder[Any] | None] = {}

    async def before_request(self, request: Request[Any, Any, Any]) -> None:
        await check_request(request, self.decoders.get(request.route_handler))  # type: ignore[call-overload]

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if app_config.before_request is not None:
            raise ValueError("the app's before_request checks input limits; call it from yours")
        app_config.before_request = self.before_request
        app_config.middleware.insert(0, SingleHostMiddleware())
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler, kwargs in route.route_handler_map.values():
            self.decoders[handler] = _strict_decoder(handler)
            if "data" in kwargs.expected_reserved_kwargs and _json_body_type(handler):
                codes: tuple[int, ...] = (400, 413, 422)
            elif kwargs.expected_query_params or kwargs.expected_path_params:
                codes = (400,)
            else:
                continue
            handler.responses = {
                **{code: error_spec(code) for code in codes},
                **(handler.responses or {}),
            }
