"""`PATCH /platform/v1/plans/{id}` changes only the features it sends: the others keep their
values, on a plan edited in place and on the new version a plan in use gets. A feature the
plan does not know, or a value that is not true or false, is 422 naming it, and nothing
changes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.tenancy.models import Tenant
from tests.billing.test_quota import set_subscription
from tests.conftest import Client

FEATURES = {
    "videoVisits": True,
    "sms": True,
    "whatsapp": False,
    "platformEmail": False,
    "platformSms": True,
}


async def new_plan(client: Client, admin_token: str) -> dict[str, Any]:
    created = await client.platform(
        "POST",
        "/platform/v1/plans",
        admin_token,
        json={
            "code": f"feat-{uuid.uuid4().hex[:6]}",
            "name": "Features",
            "priceMinor": 2900,
            "currency": "EUR",
            "interval": "month",
            "overagePolicy": "block",
            "appointmentsIncluded": 40,
            "features": FEATURES,
            "maxStaff": 3,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["features"] == FEATURES
    return created.json()["data"]  # type: ignore[no-any-return]


async def patch(client: Client, admin_token: str, plan_id: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return await client.platform("PATCH", f"/platform/v1/plans/{plan_id}", admin_token, json=body)


async def test_one_feature_sent_leaves_the_others_as_they_were(
    client: Client, admin_token: str
) -> None:
    plan = await new_plan(client, admin_token)

    changed = await patch(client, admin_token, plan["id"], {"features": {"whatsapp": True}})

    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert data["version"] == 1
    assert data["features"] == {**FEATURES, "whatsapp": True}
    assert {k: data[k] for k in ("name", "priceMinor", "maxStaff")} == {
        "name": "Features",
        "priceMinor": 2900,
        "maxStaff": 3,
    }
    stored = await client.platform("GET", f"/platform/v1/plans/{plan['id']}", admin_token)
    assert stored.json()["data"]["features"] == {**FEATURES, "whatsapp": True}

    # Another field alone leaves every feature be; an empty object changes nothing either.
    renamed = await patch(client, admin_token, plan["id"], {"name": "Renamed", "features": {}})
    assert renamed.json()["data"]["features"] == {**FEATURES, "whatsapp": True}


async def test_a_plan_in_use_gets_a_version_with_the_others_kept(
    client: Client, admin_token: str, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    plan = await new_plan(client, admin_token)
    await set_subscription(engine, two_clinics[0], plan_id=uuid.UUID(plan["id"]))

    changed = await patch(
        client, admin_token, plan["id"], {"features": {"sms": False, "platformEmail": True}}
    )

    successor = changed.json()["data"]
    assert successor["version"] == 2 and successor["id"] != plan["id"]
    assert successor["features"] == {**FEATURES, "sms": False, "platformEmail": True}
    old = await client.platform("GET", f"/platform/v1/plans/{plan['id']}", admin_token)
    assert old.json()["data"]["status"] == "archived"
    assert old.json()["data"]["features"] == FEATURES  # its subscribers keep what they had


@pytest.mark.parametrize(
    ("features", "field", "named"),
    [
        ({"teleportation": True}, "features", "teleportation"),
        ({"sms": "yes"}, "features.sms", "bool"),
        ({"sms": None}, "features.sms", "bool"),
    ],
)
async def test_a_bad_feature_is_422_naming_it_and_changes_nothing(
    client: Client, admin_token: str, features: dict[str, Any], field: str, named: str
) -> None:
    plan = await new_plan(client, admin_token)

    refused = await patch(client, admin_token, plan["id"], {"features": features})

    assert refused.status_code == 422, refused.text
    error = refused.json()["errors"][0]
    assert error["field"] == field and named in error["message"], error
    stored = await client.platform("GET", f"/platform/v1/plans/{plan['id']}", admin_token)
    assert stored.json()["data"]["features"] == FEATURES
    assert stored.json()["data"]["version"] == 1
