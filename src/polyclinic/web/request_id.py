"""`X-Request-ID` on every response: the caller's when it is sane, else a new one."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(scope: Scope) -> str:
    state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
    existing = state.get("request_id")
    if existing:
        return existing
    incoming = None
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            break
    new_id = incoming if incoming and _SANE.match(incoming) else uuid.uuid4().hex
    state["request_id"] = new_id
    return new_id


async def add_request_id_header(message: Message, scope: Scope) -> None:
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[HEADER] = request_id(scope)


class RequestIdMiddleware(ASGIMiddleware):
    """Makes the request id known to everything the request runs (logs, jobs)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = current_request_id.set(request_id(scope))
        try:
            await next_app(scope, receive, send)
        finally:
            current_request_id.reset(token)
