"""The `Authorization: Bearer ...` header, read one way for both APIs."""

from __future__ import annotations

from litestar.connection import ASGIConnection

from polyclinic.errors import Unauthorized

SIGN_IN_FIRST = "Sign in first: this needs an access token (Authorization: Bearer ...)"


def bearer_token(connection: ASGIConnection) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def sign_in_first() -> Unauthorized:
    return Unauthorized(SIGN_IN_FIRST)
