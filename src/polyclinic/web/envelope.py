"""The response envelope every endpoint answers with."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class PageMeta(msgspec.Struct, rename="camel", kw_only=True):
    total: int
    limit: int
    offset: int
    has_more: bool


class Envelope(msgspec.Struct, Generic[T], rename="camel", kw_only=True):
    success: bool = True
    status_code: int = 200
    message: str = "OK"
    data: T
    meta: dict[str, Any] = msgspec.field(default_factory=dict)


class PagedEnvelope(msgspec.Struct, Generic[T], rename="camel", kw_only=True):
    success: bool = True
    status_code: int = 200
    message: str = "OK"
    data: list[T]
    meta: PageMeta


class ErrorItem(msgspec.Struct, kw_only=True):
    field: str | None
    message: str


class ErrorEnvelope(msgspec.Struct, rename="camel", kw_only=True):
    success: bool = False
    status_code: int
    message: str
    errors: list[ErrorItem] = msgspec.field(default_factory=list)


def ok(data: T, message: str = "OK", status_code: int = 200) -> Envelope[T]:
    return Envelope(data=data, message=message, status_code=status_code)


def page(items: list[T], *, total: int, limit: int, offset: int) -> PagedEnvelope[T]:
    meta = PageMeta(total=total, limit=limit, offset=offset, has_more=offset + len(items) < total)
    return PagedEnvelope(data=items, meta=meta)
