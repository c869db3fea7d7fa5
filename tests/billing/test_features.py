"""Plan features and limits, enforced where they apply, with a message naming the plan."""

from __future__ import annotations

from litestar import Litestar, get
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.features import requires_feature
from polyclinic.billing.models import OveragePolicy
from tests.billing.test_quota import put_on_plan
from tests.identity.conftest import ClinicApi, add_user


async def test_staff_invitations_stop_at_the_plans_seat_limit(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: object
) -> None:
    # The starter plan allows 5 staff; the first admin's invitation is still open.
    await add_user(engine, clinic_a.tenant, "owner@seats.example", "clinic_admin")
    admin = (await clinic_a.login("owner@seats.example"))["accessToken"]
    statuses = []
    for n in range(4):
        response = await clinic_a.call(
            "POST",
            "/invitations",
            admin,
            json={"email": f"staff{n}@seats.example", "role": "nurse"},
        )
        statuses.append(response.status_code)
    assert statuses == [201, 201, 201, 402]
    assert "Starter plan allows 5 staff" in response.json()["message"]


async def test_reactivating_staff_counts_against_the_seat_limit(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: object
) -> None:
    # Starter: 5 seats. The admin, the first admin's open invitation, and three nurses.
    await add_user(engine, clinic_a.tenant, "owner@back.example", "clinic_admin")
    admin = (await clinic_a.login("owner@back.example"))["accessToken"]
    nurses = [
        await add_user(engine, clinic_a.tenant, f"n{n}@back.example", "nurse") for n in range(3)
    ]
    await clinic_a.call("POST", f"/staff/{nurses[0].id}/deactivate", admin)
    invited = await clinic_a.call(
        "POST", "/invitations", admin, json={"email": "new@back.example", "role": "doctor"}
    )

    back = await clinic_a.call("POST", f"/staff/{nurses[0].id}/reactivate", admin)

    assert invited.status_code == 201
    assert back.status_code == 402 and "allows 5 staff" in back.json()["message"]


async def test_requires_feature_guards_a_route(
    app: Litestar, clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    @get(
        "/api/v1/video-check",
        guards=[requires_feature("videoVisits")],
        opt={"permission": ("clinic", "read")},
    )
    async def video_check() -> dict[str, str]:
        return {"video": "on"}

    app.register(video_check)
    refused = await clinic_a.call("GET", "/video-check")
    assert refused.status_code == 402
    assert "does not include video visits" in refused.json()["message"]

    plan = await put_on_plan(engine, clinic_a.tenant, included=10, policy=OveragePolicy.BLOCK)
    from sqlalchemy import update

    from polyclinic.billing.models import Plan
    from polyclinic.db.session import platform_session

    async with platform_session(engine) as session:
        await session.execute(
            update(Plan).where(Plan.id == plan.id).values(features={"videoVisits": True})
        )
        await session.commit()
    assert (await clinic_a.call("GET", "/video-check")).status_code == 200


async def test_sms_and_whatsapp_channels_need_a_plan_that_includes_them(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "boss@example.com", "clinic_admin")
    token = (await clinic_a.login("boss@example.com"))["accessToken"]
    twilio = {
        "provider": "twilio",
        "settings": {"accountSid": "AC" + "a" * 32, "fromNumber": "+4930999000"},
        "secrets": {"authToken": "f" * 32},
    }

    answers = [
        await clinic_a.call("PUT", f"/messaging/channels/{channel}", token, json=twilio)
        for channel in ("sms", "whatsapp")
    ]
    listed = await clinic_a.call("GET", "/messaging/channels", token)

    assert [a.status_code for a in answers] == [402, 402]
    assert answers[0].json()["message"].startswith("The Starter plan does not include text")
    assert listed.json()["data"] == []
