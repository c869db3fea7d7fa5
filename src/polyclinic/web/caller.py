"""Who is calling: the client's address (the socket peer, or what a trusted proxy says it
forwarded), its user agent and the request id."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.connection import ASGIConnection

from polyclinic.web.request_id import request_id
from polyclinic.web.state import runtime_of


@dataclass(frozen=True)
class Caller:
    """Who is asking, as far as the network tells: kept with every auth event."""

    ip: str | None
    user_agent: str | None
    request_id: str | None


def client_ip(connection: ASGIConnection) -> str | None:
    """Walk X-Forwarded-For from the right past our own proxies: the first address that is
    not one of them is the client (entries left of it could be written by anyone)."""
    trusted = runtime_of(connection.app.state).trusted_proxies
    address = connection.client.host if connection.client else None
    hops = [hop.strip() for hop in connection.headers.get("x-forwarded-for", "").split(",")]
    while address in trusted and hops and hops[-1]:
        address = hops.pop()[:64]
    return address


def caller_of(connection: ASGIConnection) -> Caller:
    return Caller(
        ip=client_ip(connection),
        user_agent=connection.headers.get("user-agent"),
        request_id=request_id(connection.scope),
    )
