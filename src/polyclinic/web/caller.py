"""The calling client's address: the socket peer, or what a trusted proxy says it forwarded."""

from __future__ import annotations

from litestar.connection import ASGIConnection

from polyclinic.identity.events import Caller
from polyclinic.web.request_id import request_id
from polyclinic.web.state import runtime_of


def client_ip(connection: ASGIConnection) -> str | None:
    peer = connection.client.host if connection.client else None
    if peer in runtime_of(connection.app.state).trusted_proxies:
        forwarded = connection.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return peer


def caller_of(connection: ASGIConnection) -> Caller:
    return Caller(
        ip=client_ip(connection),
        user_agent=connection.headers.get("user-agent"),
        request_id=request_id(connection.scope),
    )
