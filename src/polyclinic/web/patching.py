"""Partial updates: a PATCH body's fields default to UNSET, so a field left out changes
nothing and an explicit null (where the type allows it) clears the value."""

from __future__ import annotations

from typing import Any

import msgspec


def sent_fields(data: msgspec.Struct) -> dict[str, Any]:
    """The fields the body actually sent, by attribute name."""
    return {
        name: value
        for name, value in msgspec.structs.asdict(data).items()
        if value is not msgspec.UNSET
    }
