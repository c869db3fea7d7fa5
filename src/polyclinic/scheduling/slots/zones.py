"""The clinic's time zone, in which slots and appointments are shown."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from polyclinic.db.context import TenantInfo


def zone_of(clinic: TenantInfo) -> ZoneInfo:
    return ZoneInfo(clinic.timezone)
