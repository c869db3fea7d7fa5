"""Plans for super-admins (versioned when in use), the public plan list, and a clinic's own
subscription and usage."""

from __future__ import annotations

import uuid

from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.cli import main
from polyclinic.config import Settings
from tests.billing.test_quota import consume
from tests.conftest import Client
from tests.identity.conftest import ClinicApi, add_user

PLAN = {
    "code": "pilot",
    "name": "Pilot",
    "priceMinor": 2900,
    "currency": "EUR",
    "interval": "month",
    "overagePolicy": "block",
    "trialDays": 7,
    "appointmentsIncluded": 40,
    "features": {"videoVisits": True},
    "maxStaff": 3,
}


async def test_plans_are_versioned_once_in_use(
    client: Client, admin_token: str, engine: AsyncEngine, two_clinics: tuple
) -> None:  # type: ignore[type-arg]
    code = f"pilot-{uuid.uuid4().hex[:6]}"
    created = await client.platform(
        "POST", "/platform/v1/plans", admin_token, json={**PLAN, "code": code}
    )
    assert created.status_code == 201, created.text
    plan = created.json()["data"]
    assert plan["features"] == {
        "videoVisits": True,
        "sms": False,
        "whatsapp": False,
        "platformEmail": True,
        "platformSms": False,
    }
    assert (
        await client.platform(
            "POST", "/platform/v1/plans", admin_token, json={**PLAN, "code": code}
        )
    ).status_code == 409

    unused = await client.platform(
        "PATCH", f"/platform/v1/plans/{plan['id']}", admin_token, json={"name": "Pilot+"}
    )
    assert unused.json()["data"]["version"] == 1 and unused.json()["data"]["name"] == "Pilot+"

    from tests.billing.test_quota import set_subscription

    await set_subscription(engine, two_clinics[0], plan_id=uuid.UUID(plan["id"]))
    changed = await client.platform(
        "PATCH", f"/platform/v1/plans/{plan['id']}", admin_token, json={"priceMinor": 3900}
    )
    successor = changed.json()["data"]
    assert (
        successor["version"] == 2
        and successor["priceMinor"] == 3900
        and successor["id"] != plan["id"]
    )
    old = await client.platform("GET", f"/platform/v1/plans/{plan['id']}", admin_token)
    assert old.json()["data"]["priceMinor"] == 2900 and old.json()["data"]["status"] == "archived"

    public = await client.platform("GET", "/platform/v1/plans")
    offered = {(p["code"], p["version"]) for p in public.json()["data"]}
    assert (code, 2) in offered and (code, 1) not in offered and ("starter", 1) in offered
    bad = await client.platform(
        "POST", "/platform/v1/plans", admin_token, json={**PLAN, "code": "x", "currency": "euro"}
    )
    assert bad.status_code == 422
    assert (await client.platform("POST", "/platform/v1/plans", None, json=PLAN)).status_code == 401


async def test_a_clinic_sees_its_subscription_and_usage(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "books@example.com", "billing")
    await add_user(engine, clinic_a.tenant, "doc-billing@example.com", "doctor")
    token = (await clinic_a.login("books@example.com"))["accessToken"]
    appointment = uuid.uuid4()
    await consume(engine, clinic_a.tenant, appointment)

    subscription = await clinic_a.call("GET", "/billing/subscription", token)
    usage = await clinic_a.call("GET", "/billing/usage", token)
    doctor = (await clinic_a.login("doc-billing@example.com"))["accessToken"]

    data = subscription.json()["data"]
    assert data["status"] == "trialing" and data["plan"]["code"] == "starter"
    assert data["quota"] == {"included": 150, "used": 1, "remaining": 149, "overage": 0}
    assert usage.json()["data"][0]["appointmentId"] == str(appointment)
    assert (await clinic_a.call("GET", "/billing/subscription", doctor)).status_code == 403


def test_seed_plans_command(settings: Settings, database_url: str) -> None:
    env = {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
    }
    result = CliRunner().invoke(main, ["billing", "seed-plans"], env=env)
    assert result.exit_code == 0 and "all default plans exist" in result.output


async def test_platform_metrics(
    client: Client, admin_token: str, engine: AsyncEngine, two_clinics: tuple
) -> None:  # type: ignore[type-arg]
    from tests.billing.test_quota import set_subscription

    a, _ = two_clinics
    await set_subscription(engine, a, status="active")
    await consume(engine, a, uuid.uuid4())

    response = await client.platform("GET", "/platform/v1/metrics", admin_token)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["clinicsByStatus"]["active"] >= 2
    assert {"plan": "starter", "status": "active"}.items() <= next(
        s for s in data["subscriptions"] if s["plan"] == "starter" and s["status"] == "active"
    ).items()
    assert data["monthlyRecurringRevenueMinor"]["EUR"] >= 4900
    assert data["quotaThisPeriod"]["used"] >= 1
    assert (await client.platform("GET", "/platform/v1/metrics")).status_code == 401


async def test_upgrades_apply_at_once_and_downgrades_at_period_end(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "owner@plans.example", "clinic_admin")
    token = (await clinic_a.login("owner@plans.example"))["accessToken"]
    await consume(engine, clinic_a.tenant, uuid.uuid4())

    up = await clinic_a.call("POST", "/billing/change-plan", token, json={"planCode": "growth"})
    assert up.status_code == 200, up.text
    assert up.json()["data"]["effective"] == "now"
    now_on = (await clinic_a.call("GET", "/billing/subscription", token)).json()["data"]
    assert now_on["plan"]["code"] == "growth"
    assert now_on["quota"] == {"included": 1000, "used": 1, "remaining": 999, "overage": 0}

    down = await clinic_a.call("POST", "/billing/change-plan", token, json={"planCode": "starter"})
    assert down.json()["data"]["effective"] == "period_end"
    assert down.json()["data"]["effectiveAt"] == now_on["currentPeriodEnd"]
    still = (await clinic_a.call("GET", "/billing/subscription", token)).json()["data"]
    assert still["plan"]["code"] == "growth"

    same = await clinic_a.call("POST", "/billing/change-plan", token, json={"planCode": "growth"})
    unknown = await clinic_a.call("POST", "/billing/change-plan", token, json={"planCode": "gold"})
    assert same.status_code == 409
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "planCode"
