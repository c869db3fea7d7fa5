"""How entries are chained: each entry's hash covers its content, its clinic and the hash of
the entry before it; a clinic's first entry follows a start value derived from the clinic.

The content is hashed in one canonical form (JSON, sorted keys, no spaces, UTC instants
with microseconds), so the verifier computes the same hash from the stored row. Changing any
field, removing an entry or copying entries into another clinic breaks the chain.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

VERSION = 1
# The fields of an entry its hash covers, besides the clinic.
HASHED = (
    "id",
    "seq",
    "occurred_at",
    "actor_id",
    "actor_role",
    "patient_id",
    "action",
    "resource",
    "resource_id",
    "request_id",
    "ip",
    "emergency",
    "reason",
    "prev_hash",
)


def chain_start(clinic_id: uuid.UUID) -> str:
    """What a clinic's first entry names as its predecessor."""
    return hashlib.sha256(f"polyclinic audit chain v{VERSION} {clinic_id}".encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def entry_hash(clinic_id: uuid.UUID, entry: Mapping[str, Any]) -> str:
    content = {name: _canonical(entry[name]) for name in HASHED}
    content["clinic"] = str(clinic_id)
    content["v"] = VERSION
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()
