"""Message preferences: the channels a user accepts and their language, through the API, and
how delivery reads them (`reach_for`, `locale_for`)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_transaction
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.preferences.services import Reach, locale_for, phone_address, reach_for
from tests.identity.conftest import ClinicApi, add_user
from tests.messaging.conftest import info

PHONE = "+43 664 1234567"
DEFAULTS = {"channels": ["email", "sms"], "locale": None}


async def _token(clinic: ClinicApi, email: str) -> str:
    return (await clinic.login(email))["accessToken"]


async def _preferences(clinic: ClinicApi, token: str) -> dict[str, object]:
    response = await clinic.call("GET", "/me/preferences", token)
    assert response.status_code == 200, response.text
    return response.json()["data"]


# The API -----------------------------------------------------------------------------------


async def test_a_patient_reads_and_changes_their_preferences(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "pat@prefs.example", "patient", phone=PHONE)
    await add_user(engine, clinic_a.tenant, "boss@prefs.example", "clinic_admin")
    patient = await _token(clinic_a, "pat@prefs.example")
    assert await _preferences(clinic_a, patient) == DEFAULTS

    saved = await clinic_a.call(
        "PUT",
        "/me/preferences",
        patient,
        json={"channels": ["whatsapp", "email"], "locale": "de-AT"},
    )
    assert saved.status_code == 200, saved.text
    wanted = {"channels": ["email", "whatsapp"], "locale": "de-AT"}
    assert saved.json()["data"] == wanted
    assert await _preferences(clinic_a, patient) == wanted
    me = await clinic_a.call("GET", "/auth/me", patient)
    assert me.json()["data"]["messagePreferences"] == wanted

    # Opted out of everything, back to the clinic's language.
    none = await clinic_a.call(
        "PUT", "/me/preferences", patient, json={"channels": [], "locale": None}
    )
    assert none.status_code == 200 and none.json()["data"] == {"channels": [], "locale": None}
    assert await _preferences(clinic_a, patient) == {"channels": [], "locale": None}

    # Each change is on the clinic's trail; saving the same again is not a change.
    await clinic_a.call("PUT", "/me/preferences", patient, json={"channels": [], "locale": None})
    admin = await _token(clinic_a, "boss@prefs.example")
    trail = await clinic_a.call("GET", "/auth-events?event=message_preferences_changed", admin)
    details = [e["detail"] for e in trail.json()["data"]]
    assert details == [
        {"channels": [], "locale": None},
        {"channels": ["email", "whatsapp"], "locale": "de-AT"},
    ]


async def test_staff_keep_their_own_and_see_a_patients_preferences(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    patient = await add_user(engine, clinic_a.tenant, "p@prefs.example", "patient", phone=PHONE)
    await add_user(engine, clinic_a.tenant, "desk@prefs.example", "receptionist")
    await add_user(engine, clinic_a.tenant, "doc@prefs.example", "doctor")
    await clinic_a.call(
        "PUT",
        "/me/preferences",
        await _token(clinic_a, "p@prefs.example"),
        json={"channels": ["sms"], "locale": "de"},
    )

    doctor = await _token(clinic_a, "doc@prefs.example")
    own = await clinic_a.call(
        "PUT", "/me/preferences", doctor, json={"channels": ["email"], "locale": "en"}
    )
    assert own.json()["data"] == {"channels": ["email"], "locale": "en"}

    desk = await _token(clinic_a, "desk@prefs.example")
    shown = await clinic_a.call("GET", f"/patients/{patient.id}", desk)
    assert shown.json()["data"]["messagePreferences"] == {"channels": ["sms"], "locale": "de"}
    listed = await clinic_a.call("GET", "/patients?q=p@prefs", desk)
    assert listed.json()["data"][0]["messagePreferences"] == {"channels": ["sms"], "locale": "de"}
    assert await _preferences(clinic_a, desk) == DEFAULTS  # each their own

    assert (await clinic_a.call("GET", "/me/preferences")).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": ["email", "fax"], "locale": None}, "channels[1]"),
        ({"channels": ["email", "email"], "locale": None}, "channels"),
        ({"channels": ["email", "sms", "whatsapp", "email"], "locale": None}, "channels"),
        ({"channels": ["email"], "locale": "german"}, "locale"),
        ({"channels": ["email"], "locale": "de_AT"}, "locale"),
        ({"channels": ["email"], "locale": "DE"}, "locale"),
        ({"channels": ["email"]}, "locale"),
        ({"locale": "de"}, "channels"),
        ({"channels": "email", "locale": None}, "channels"),
        ({"channels": ["email"], "locale": None, "phone": PHONE}, "phone"),
    ],
)
async def test_invalid_preferences_are_refused_and_change_nothing(
    clinic_a: ClinicApi, engine: AsyncEngine, body: dict[str, object], field: str
) -> None:
    await add_user(engine, clinic_a.tenant, "bad@prefs.example", "patient", phone=PHONE)
    patient = await _token(clinic_a, "bad@prefs.example")
    refused = await clinic_a.call("PUT", "/me/preferences", patient, json=body)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert answer["success"] is False
    assert [e["field"] for e in answer["errors"]] == [field], answer
    assert await _preferences(clinic_a, patient) == DEFAULTS


@pytest.mark.parametrize("phone", [None, "0664 1234567"])
async def test_sms_and_whatsapp_need_a_phone_number_in_international_form(
    clinic_a: ClinicApi, engine: AsyncEngine, phone: str | None
) -> None:
    await add_user(engine, clinic_a.tenant, "nophone@prefs.example", "patient", phone=phone)
    patient = await _token(clinic_a, "nophone@prefs.example")
    # The defaults (SMS included) can be sent back as they are, with a new language: delivery
    # simply cannot reach this patient by SMS.
    kept = await clinic_a.call("PUT", "/me/preferences", patient, json={**DEFAULTS, "locale": "de"})
    assert kept.status_code == 200, kept.text
    email_only = {"channels": ["email"], "locale": "de"}
    assert (
        await clinic_a.call("PUT", "/me/preferences", patient, json=email_only)
    ).status_code == 200

    # Switching SMS or WhatsApp on needs the number.
    for channels in (["sms"], ["email", "whatsapp"], ["sms", "whatsapp"]):
        refused = await clinic_a.call(
            "PUT", "/me/preferences", patient, json={"channels": channels, "locale": "en"}
        )
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["field"] == "channels"
        assert "phone number" in error["message"]
        assert " and ".join(c for c in channels if c != "email") in error["message"]
        assert "phone number" in refused.json()["message"]
    assert await _preferences(clinic_a, patient) == email_only

    # With a number set, SMS can be chosen.
    await clinic_a.call("PATCH", "/auth/me", patient, json={"phone": PHONE})
    sms = await clinic_a.call(
        "PUT", "/me/preferences", patient, json={"channels": ["sms"], "locale": "de"}
    )
    assert sms.status_code == 200 and sms.json()["data"]["channels"] == ["sms"]


async def test_the_database_refuses_an_unknown_channel(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    user = await add_user(engine, clinic_a.tenant, "db@prefs.example", "patient")
    with pytest.raises(IntegrityError, match="ck_users_message_channels"):
        async with clinic_transaction(engine, info(clinic_a.tenant)) as session:
            await session.execute(
                text("UPDATE users SET message_channels = '{email,fax}' WHERE id = :id"),
                {"id": user.id},
            )


async def test_two_clinics_with_the_same_user_ids_keep_their_own_preferences(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    email = "twin@prefs.example"
    a_user = await add_user(engine, clinic_a.tenant, email, "patient", phone=PHONE)
    b_user = await add_user(engine, clinic_b.tenant, email, "patient", phone=PHONE, id=a_user.id)
    assert a_user.id == b_user.id
    await add_user(engine, clinic_b.tenant, "desk@prefs.example", "receptionist")
    a_token = await _token(clinic_a, email)
    b_token = await _token(clinic_b, email)

    changed = await clinic_a.call(
        "PUT", "/me/preferences", a_token, json={"channels": ["whatsapp"], "locale": "de-AT"}
    )
    assert changed.status_code == 200
    assert await _preferences(clinic_b, b_token) == DEFAULTS
    b_desk = await _token(clinic_b, "desk@prefs.example")
    seen_at_b = await clinic_b.call("GET", f"/patients/{a_user.id}", b_desk)
    assert seen_at_b.json()["data"]["messagePreferences"] == DEFAULTS

    # A token of one clinic neither reads nor changes anything at the other.
    assert (await clinic_b.call("GET", "/me/preferences", a_token)).status_code == 401
    crossed = await clinic_b.call(
        "PUT", "/me/preferences", a_token, json={"channels": [], "locale": "en"}
    )
    assert crossed.status_code == 401
    assert await _preferences(clinic_b, b_token) == DEFAULTS
    assert await _preferences(clinic_a, a_token) == {"channels": ["whatsapp"], "locale": "de-AT"}


# reach_for and locale_for ------------------------------------------------------------------


def _user(
    channels: list[str] | None = None,
    phone: str | None = PHONE,
    role: str = "patient",
    locale: str | None = None,
) -> User:
    return User(
        email="ana@example.com",
        first_name="Ana",
        last_name="Example",
        role=role,
        phone=phone,
        locale=locale,
        message_channels=channels,
    )


def test_by_default_email_and_sms_reach_the_user_and_whatsapp_does_not() -> None:
    expected = [
        Reach("email", "ana@example.com", None),
        Reach("sms", "+436641234567", None),
    ]
    assert reach_for(_user(["email", "sms"])) == expected
    assert reach_for(_user(None)) == expected  # not saved yet: the defaults
    assert all(reach.sendable for reach in expected)


def test_a_channel_turned_off_is_refused_as_an_opt_out() -> None:
    assert reach_for(_user(["sms"])) == [
        Reach("email", "ana@example.com", "the patient opted out of email"),
        Reach("sms", "+436641234567", None),
    ]
    assert reach_for(_user([])) == [
        Reach("email", "ana@example.com", "the patient opted out of email"),
        Reach("sms", "+436641234567", "the patient opted out of sms"),
    ]
    staff = reach_for(_user(["sms"], role="clinic_admin"), ["email"])
    assert staff == [Reach("email", "ana@example.com", "the recipient opted out of email")]
    assert not staff[0].sendable


def test_whatsapp_reaches_only_a_user_who_turned_it_on() -> None:
    assert reach_for(_user(["email", "sms"]), ["whatsapp"]) == []
    assert reach_for(_user([]), ["whatsapp"]) == []
    assert reach_for(_user(["whatsapp"]), ["whatsapp", "email"]) == [
        Reach("whatsapp", "+436641234567", None),
        Reach("email", "ana@example.com", "the patient opted out of email"),
    ]


@pytest.mark.parametrize("phone", [None, "0664 1234567", "+43", "call me"])
def test_phone_channels_without_a_usable_number_are_refused(phone: str | None) -> None:
    reaches = reach_for(_user(["email", "sms", "whatsapp"], phone=phone))
    assert reaches[0] == Reach("email", "ana@example.com", None)
    for reach, channel in zip(reaches[1:], ["sms", "whatsapp"], strict=True):
        assert reach.channel == channel and reach.address is None
        assert reach.refused is not None and "phone number" in reach.refused
    # An opt-out is the reason given even when there is no number either.
    assert reach_for(_user([], phone=phone), ["sms"]) == [
        Reach("sms", None, "the patient opted out of sms")
    ]


def test_phone_numbers_are_read_in_e164_form() -> None:
    assert phone_address("+43 (664) 123-4567") == "+436641234567"
    assert phone_address("+436641234567") == "+436641234567"
    assert phone_address("+0 664 1234567") is None
    assert phone_address("00436641234567") is None
    assert phone_address(None) is None


def test_an_unknown_channel_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="fax"):
        reach_for(_user(), ["email", "fax"])


def test_the_locale_is_the_users_own_or_the_clinic_default() -> None:
    assert locale_for(_user(locale=None)) == "en"
    assert locale_for(_user(locale="de-AT")) == "de-AT"
    assert locale_for(_user(locale="fr")) == "fr"
