from __future__ import annotations

import msgspec


class ClinicPublic(msgspec.Struct, rename="camel"):
    name: str
    subdomain: str
    timezone: str
