"""Setting a clinic up for booking: practitioners (within the plan's limit), services, weekly
hours and exceptions, the booking policy, and the admin's onboarding checklist."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import OveragePolicy
from polyclinic.db.session import clinic_transaction
from polyclinic.messaging.channels.models import ChannelSetting
from polyclinic.scheduling.setup.models import Practitioner, Service
from polyclinic.tenancy.resolver import tenant_info
from tests.billing.test_quota import put_on_plan
from tests.billing.test_stripe_billing import admin_of
from tests.billing.test_stripe_webhooks import deliver
from tests.identity.conftest import ClinicApi, add_user
from tests.stripe_stand_in import StripeStandIn


async def doctor(clinic: ClinicApi, engine: AsyncEngine, role: str = "doctor") -> uuid.UUID:
    user = await add_user(engine, clinic.tenant, f"{role}-{uuid.uuid4().hex[:8]}@example.com", role)
    return user.id


async def count(engine: AsyncEngine, clinic: ClinicApi, model: type) -> int:
    info = tenant_info(clinic.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_practitioners_stop_at_the_plans_limit_with_a_message_naming_it(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    for _ in range(3):  # the starter plan allows three
        created = await clinic_a.call(
            "POST",
            "/practitioners",
            token,
            json={"userId": str(await doctor(clinic_a, engine)), "specialty": "General practice"},
        )
        assert created.status_code == 201, created.text

    fourth = await clinic_a.call(
        "POST",
        "/practitioners",
        token,
        json={"userId": str(await doctor(clinic_a, engine, "nurse")), "specialty": "Nursing"},
    )

    assert fourth.status_code == 402
    assert fourth.json()["message"].startswith("The Starter plan allows 3 practitioners")
    assert await count(engine, clinic_a, Practitioner) == 3


async def test_concurrent_additions_and_reactivations_stay_within_the_limit(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    people = [await doctor(clinic_a, engine) for _ in range(6)]

    answers = await asyncio.gather(
        *(
            clinic_a.call(
                "POST", "/practitioners", token, json={"userId": str(p), "specialty": "GP"}
            )
            for p in people
        )
    )

    created = [a.json()["data"]["id"] for a in answers if a.status_code == 201]
    assert sorted(a.status_code for a in answers) == [201, 201, 201, 402, 402, 402]
    await clinic_a.call("PATCH", f"/practitioners/{created[0]}", token, json={"isActive": False})
    replacement = await clinic_a.call(
        "POST",
        "/practitioners",
        token,
        json={"userId": str(await doctor(clinic_a, engine)), "specialty": "GP"},
    )
    back = await clinic_a.call(
        "PATCH", f"/practitioners/{created[0]}", token, json={"isActive": True}
    )
    assert replacement.status_code == 201
    assert back.status_code == 402 and "allows 3 practitioners" in back.json()["message"]


async def test_only_active_doctors_and_nurses_become_practitioners_once(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    receptionist = await doctor(clinic_a, engine, "receptionist")
    physician = await doctor(clinic_a, engine)

    wrong_role = await clinic_a.call(
        "POST", "/practitioners", token, json={"userId": str(receptionist), "specialty": "x"}
    )
    nobody = await clinic_a.call(
        "POST", "/practitioners", token, json={"userId": str(uuid.uuid4()), "specialty": "x"}
    )
    first = await clinic_a.call(
        "POST", "/practitioners", token, json={"userId": str(physician), "specialty": "ENT"}
    )
    again = await clinic_a.call(
        "POST", "/practitioners", token, json={"userId": str(physician), "specialty": "ENT"}
    )

    assert wrong_role.status_code == nobody.status_code == 422
    assert wrong_role.json()["errors"][0]["field"] == "userId"
    assert first.status_code == 201 and first.json()["data"]["displayName"] == "Test Doctor"
    assert again.status_code == 409
    assert await count(engine, clinic_a, Practitioner) == 1


async def test_patients_see_only_verified_practitioners_and_active_services(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    await add_user(engine, clinic_a.tenant, "pat@example.com", "patient")
    patient = (await clinic_a.login("pat@example.com"))["accessToken"]
    created = await clinic_a.call(
        "POST",
        "/practitioners",
        token,
        json={"userId": str(await doctor(clinic_a, engine)), "specialty": "Cardiology"},
    )
    practitioner = created.json()["data"]["id"]
    service = await clinic_a.call(
        "POST",
        "/services",
        token,
        json={"name": "Check-up", "durationMinutes": 30, "priceMinor": 5000, "currency": "EUR"},
    )
    retired = await clinic_a.call(
        "POST",
        "/services",
        token,
        json={"name": "Old thing", "durationMinutes": 30, "priceMinor": 0, "currency": "EUR"},
    )
    await clinic_a.call(
        "PATCH", f"/services/{retired.json()['data']['id']}", token, json={"isActive": False}
    )

    before = await clinic_a.call("GET", "/practitioners", patient)
    verified = await clinic_a.call("POST", f"/practitioners/{practitioner}/verify", patient)
    await clinic_a.call("POST", f"/practitioners/{practitioner}/verify", token)
    twice = await clinic_a.call("POST", f"/practitioners/{practitioner}/verify", token)
    after = await clinic_a.call("GET", "/practitioners", patient)
    services = await clinic_a.call("GET", "/services", patient)
    staff_view = await clinic_a.call("GET", "/services", token)

    assert before.json()["data"] == [] and verified.status_code == 403
    assert twice.status_code == 409
    assert [p["id"] for p in after.json()["data"]] == [practitioner]
    assert [s["name"] for s in services.json()["data"]] == [service.json()["data"]["name"]]
    assert len(staff_view.json()["data"]) == 2


async def test_services_name_who_offers_them_and_bad_input_writes_nothing(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    ids = []
    for _ in range(2):
        created = await clinic_a.call(
            "POST",
            "/practitioners",
            token,
            json={"userId": str(await doctor(clinic_a, engine)), "specialty": "GP"},
        )
        ids.append(created.json()["data"]["id"])
    body = {
        "name": "Consultation",
        "durationMinutes": 20,
        "priceMinor": 6000,
        "currency": "EUR",
        "mode": "video",
        "bufferAfterMinutes": 10,
        "practitionerIds": [ids[0]],
    }

    not_in_plan = await clinic_a.call("POST", "/services", token, json=body)
    await put_on_plan(
        engine,
        clinic_a.tenant,
        included=None,
        policy=OveragePolicy.BLOCK,
        features={"videoVisits": True},
    )
    unknown = await clinic_a.call(
        "POST", "/services", token, json={**body, "practitionerIds": [str(uuid.uuid4())]}
    )
    too_long = await clinic_a.call(
        "POST", "/services", token, json={**body, "durationMinutes": 600}
    )
    created = await clinic_a.call("POST", "/services", token, json=body)
    same_name = await clinic_a.call("POST", "/services", token, json=body)
    moved = await clinic_a.call(
        "PATCH", f"/services/{created.json()['data']['id']}", token, json={"practitionerIds": ids}
    )

    assert not_in_plan.status_code == 402
    assert not_in_plan.json()["message"].startswith("The Starter plan does not include video")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "practitionerIds"
    assert too_long.status_code == 422
    assert created.status_code == 201 and created.json()["data"]["mode"] == "video"
    assert same_name.status_code == 409
    assert moved.json()["data"]["practitionerIds"] == sorted(ids)
    assert await count(engine, clinic_a, Service) == 1


async def test_weekly_hours_with_breaks_exceptions_and_the_policy(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    created = await clinic_a.call(
        "POST",
        "/practitioners",
        token,
        json={"userId": str(await doctor(clinic_a, engine)), "specialty": "GP"},
    )
    hours_path = f"/practitioners/{created.json()['data']['id']}/hours"
    week = [
        {"weekday": 0, "starts": "13:00", "ends": "17:00"},
        {"weekday": 0, "starts": "09:00", "ends": "12:00"},
        {"weekday": 2, "starts": "08:30", "ends": "12:30"},
    ]

    overlapping = await clinic_a.call(
        "PUT",
        hours_path,
        token,
        json={"hours": [*week, {"weekday": 0, "starts": "11:00", "ends": "14:00"}]},
    )
    backwards = await clinic_a.call(
        "PUT",
        hours_path,
        token,
        json={"hours": [{"weekday": 1, "starts": "12:00", "ends": "09:00"}]},
    )
    bad_clock = await clinic_a.call(
        "PUT",
        hours_path,
        token,
        json={"hours": [{"weekday": 1, "starts": "25:00", "ends": "26:00"}]},
    )
    saved = await clinic_a.call("PUT", hours_path, token, json={"hours": week})
    read = await clinic_a.call("GET", hours_path, token)

    assert overlapping.status_code == backwards.status_code == bad_clock.status_code == 422
    assert saved.status_code == 200
    assert read.json()["data"] == sorted(week, key=lambda h: (h["weekday"], h["starts"]))

    exceptions_path = hours_path.replace("/hours", "/exceptions")
    extra_without_times = await clinic_a.call(
        "POST", exceptions_path, token, json={"day": "2030-05-06", "kind": "extra"}
    )
    day_off = await clinic_a.call(
        "POST",
        exceptions_path,
        token,
        json={"day": "2030-05-06", "kind": "off", "reason": "Congress"},
    )
    listed = await clinic_a.call("GET", exceptions_path, token)
    removed = await clinic_a.call(
        "DELETE", f"{exceptions_path}/{day_off.json()['data']['id']}", token
    )
    removed_again = await clinic_a.call(
        "DELETE", f"{exceptions_path}/{day_off.json()['data']['id']}", token
    )

    assert extra_without_times.status_code == 422
    assert day_off.status_code == 201 and listed.json()["data"][0]["reason"] == "Congress"
    assert removed.status_code == 200 and removed_again.status_code == 404

    policy = await clinic_a.call("GET", "/booking-policy", token)
    changed = await clinic_a.call(
        "PATCH",
        "/booking-policy",
        token,
        json={"slotGranularityMinutes": 10, "minNoticeMinutes": 60},
    )
    odd = await clinic_a.call("PATCH", "/booking-policy", token, json={"slotGranularityMinutes": 7})
    assert policy.json()["data"]["slotGranularityMinutes"] == 15
    assert changed.json()["data"] == {
        "minNoticeMinutes": 60,
        "horizonDays": 90,
        "cancellationNoticeHours": 24,
        "slotGranularityMinutes": 10,
        "reminderOffsetsMinutes": [1440, 60],
    }
    assert odd.status_code == 422


async def test_twin_practitioner_ids_in_two_clinics_stay_apart(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    twin = uuid.uuid4()
    for clinic, specialty in ((clinic_a, "Dermatology"), (clinic_b, "Paediatrics")):
        user = await doctor(clinic, engine)
        info = tenant_info(clinic.tenant)
        assert info is not None
        async with clinic_transaction(engine, info) as session:
            session.add(
                Practitioner(
                    id=twin,
                    user_id=user,
                    display_name="Dr Twin",
                    specialty=specialty,
                    bio="",
                    is_active=True,
                )
            )
    token_a = await admin_of(clinic_a, engine)
    token_b = await admin_of(clinic_b, engine)

    await clinic_a.call("PATCH", f"/practitioners/{twin}", token_a, json={"bio": "From A"})
    await clinic_a.call(
        "PUT",
        f"/practitioners/{twin}/hours",
        token_a,
        json={"hours": [{"weekday": 4, "starts": "09:00", "ends": "10:00"}]},
    )

    seen_by_b = await clinic_b.call("GET", "/practitioners", token_b)
    hours_b = await clinic_b.call("GET", f"/practitioners/{twin}/hours", token_b)
    seen_by_a = await clinic_a.call("GET", "/practitioners", token_a)
    assert [(p["specialty"], p["bio"]) for p in seen_by_b.json()["data"]] == [("Paediatrics", "")]
    assert [(p["specialty"], p["bio"]) for p in seen_by_a.json()["data"]] == [
        ("Dermatology", "From A")
    ]
    assert hours_b.json()["data"] == []


async def test_the_onboarding_checklist_follows_what_the_clinic_set_up(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    token = await admin_of(clinic_a, engine)

    async def done() -> dict[str, bool]:
        answer = await clinic_a.call("GET", "/onboarding", token)
        assert answer.status_code == 200, answer.text
        return {s["key"]: s["done"] for s in answer.json()["data"]["steps"]}

    assert await done() == dict.fromkeys(
        ("profile", "staff", "services", "schedules", "payments", "messaging"), False
    )
    await clinic_a.call("PATCH", "/clinic", token, json={"phone": "+49 30 1234567"})
    assert (await done())["profile"] is False  # the address is still missing
    bad = await clinic_a.call("PATCH", "/clinic", token, json={"contactEmail": "not-an-address"})
    assert bad.status_code == 422
    await clinic_a.call("PATCH", "/clinic", token, json={"address": "1 River Street, Berlin"})
    physician = await doctor(clinic_a, engine)
    practitioner = (
        await clinic_a.call(
            "POST", "/practitioners", token, json={"userId": str(physician), "specialty": "GP"}
        )
    ).json()["data"]["id"]
    await clinic_a.call(
        "POST",
        "/services",
        token,
        json={
            "name": "Visit",
            "durationMinutes": 15,
            "priceMinor": 0,
            "currency": "EUR",
            "practitionerIds": [practitioner],
        },
    )
    await clinic_a.call(
        "PUT",
        f"/practitioners/{practitioner}/hours",
        token,
        json={"hours": [{"weekday": 1, "starts": "09:00", "ends": "12:00"}]},
    )
    assert await done() == {
        "profile": True,
        "staff": True,
        "services": True,
        "schedules": False,  # not verified yet: nobody can book them
        "payments": False,
        "messaging": False,
    }
    await clinic_a.call("POST", f"/practitioners/{practitioner}/verify", token)
    page = await clinic_a.call("POST", "/billing/portal", token)
    await deliver(
        clinic_a.client, stripe.complete_checkout(page.json()["data"]["url"].rsplit("/", 1)[1])
    )

    assert (await done())["payments"] is True
    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:  # as the channel API saves it
        session.add(ChannelSetting(channel="email", provider="smtp", settings={}))

    answer = await clinic_a.call("GET", "/onboarding", token)
    assert answer.json()["data"]["completed"] == 6 and answer.json()["data"]["percent"] == 100
    public = await clinic_a.call("GET", "/clinic")
    assert public.json()["data"]["address"] == "1 River Street, Berlin"


async def test_a_patch_changes_only_what_it_sends_and_null_clears_only_what_may_be_empty(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    await clinic_a.call(
        "PATCH", "/clinic", token, json={"phone": "+49 30 1234567", "address": "1 River St"}
    )
    cleared = await clinic_a.call("PATCH", "/clinic", token, json={"phone": None})
    assert cleared.json()["data"]["phone"] is None
    assert cleared.json()["data"]["address"] == "1 River St"

    created = await clinic_a.call(
        "POST",
        "/practitioners",
        token,
        json={"userId": str(await doctor(clinic_a, engine)), "specialty": "GP", "bio": "Hello"},
    )
    path = f"/practitioners/{created.json()['data']['id']}"
    no_specialty = await clinic_a.call("PATCH", path, token, json={"specialty": None})
    renamed = await clinic_a.call("PATCH", path, token, json={"displayName": "Dr Who"})
    assert no_specialty.status_code == 422
    assert (renamed.json()["data"]["specialty"], renamed.json()["data"]["bio"]) == ("GP", "Hello")
