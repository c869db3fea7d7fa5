"""What the locations API takes and gives (camelCase JSON)."""

import uuid
from typing import Annotated, Literal

import msgspec

from polyclinic.scheduling.locations.models import Location
from polyclinic.scheduling.setup.schemas import UNSET, ServiceName, Unset
from polyclinic.web.openapi import published_as


class LocationCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: ServiceName
    kind: Literal["room", "site"]
    address: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class LocationUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: ServiceName | Unset = UNSET
    kind: Literal["room", "site"] | Unset = UNSET
    address: Annotated[str, msgspec.Meta(max_length=500)] | Unset | None = UNSET
    is_active: bool | Unset = UNSET


@published_as("polyclinic.scheduling.schemas")
class LocationOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    name: str
    kind: str
    address: str | None
    is_active: bool


def location_out(location: Location) -> LocationOut:
    return LocationOut(
        id=location.id,
        name=location.name,
        kind=location.kind,
        address=location.address,
        is_active=location.is_active,
    )
