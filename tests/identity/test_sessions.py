"""Refresh rotation with reuse detection, sign-out, session lists, automatic logoff, cookies."""

from __future__ import annotations

import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.db.session import clinic_transaction
from polyclinic.identity.sessions.models import AuthSession, RefreshToken
from polyclinic.tenancy.resolver import tenant_info
from tests.conftest import Client, make_settings
from tests.identity.conftest import ClinicApi, add_user


async def test_refresh_rotates_and_a_reused_token_ends_the_session(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "pat@example.com", "patient")
    first = await clinic_a.login("pat@example.com")

    second = await clinic_a.call(
        "POST", "/auth/refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert second.status_code == 200, second.text
    rotated = second.json()["data"]
    assert rotated["refreshToken"] != first["refreshToken"]
    assert (await clinic_a.call("GET", "/auth/me", rotated["accessToken"])).status_code == 200

    # Later than the few seconds two tabs may race, the spent token comes back: theft.
    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.used_at.is_not(None))
            .values(used_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1))
        )
    replay = await clinic_a.call(
        "POST", "/auth/refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert replay.status_code == 401
    # The whole family is gone: the newest token and its access token no longer work either.
    newest = await clinic_a.call(
        "POST", "/auth/refresh", json={"refreshToken": rotated["refreshToken"]}
    )
    assert newest.status_code == 401
    assert (await clinic_a.call("GET", "/auth/me", rotated["accessToken"])).status_code == 401


async def test_logout_logout_all_and_ending_one_session(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "doc2@example.com", "doctor")
    phone = await clinic_a.login("doc2@example.com")
    laptop = await clinic_a.login("doc2@example.com")
    tablet = await clinic_a.login("doc2@example.com")

    listed = await clinic_a.call("GET", "/auth/sessions", laptop["accessToken"])
    sessions = listed.json()["data"]
    assert len(sessions) == 3
    assert sum(s["current"] for s in sessions) == 1

    phone_id = next(s["id"] for s in sessions if not s["current"] and s["id"])
    ended = await clinic_a.call("DELETE", f"/auth/sessions/{phone_id}", laptop["accessToken"])
    assert ended.status_code == 200
    remaining = (await clinic_a.call("GET", "/auth/sessions", laptop["accessToken"])).json()["data"]
    assert len(remaining) == 2

    out = await clinic_a.call("POST", "/auth/logout", laptop["accessToken"])
    assert out.status_code == 200
    assert (await clinic_a.call("GET", "/auth/me", laptop["accessToken"])).status_code == 401
    alive = [
        t
        for t in (phone, tablet)
        if (await clinic_a.call("GET", "/auth/me", t["accessToken"])).status_code == 200
    ]
    assert len(alive) == 1

    everywhere = await clinic_a.call("POST", "/auth/logout-all", alive[0]["accessToken"])
    assert everywhere.json()["data"] == {"endedSessions": 1}
    for tokens in (phone, laptop, tablet):
        assert (await clinic_a.call("GET", "/auth/me", tokens["accessToken"])).status_code == 401
        refreshed = await clinic_a.call(
            "POST", "/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        assert refreshed.status_code == 401


async def test_another_users_session_cannot_be_ended(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "u1@example.com", "patient")
    await add_user(engine, clinic_a.tenant, "u2@example.com", "patient")
    one = await clinic_a.login("u1@example.com")
    two = await clinic_a.login("u2@example.com")
    two_session = (await clinic_a.call("GET", "/auth/sessions", two["accessToken"])).json()["data"][
        0
    ]["id"]

    attempt = await clinic_a.call("DELETE", f"/auth/sessions/{two_session}", one["accessToken"])

    assert attempt.status_code == 404
    assert (await clinic_a.call("GET", "/auth/me", two["accessToken"])).status_code == 200


async def _age_sessions(engine: AsyncEngine, clinic: ClinicApi, **changes: object) -> None:
    info = tenant_info(clinic.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        await session.execute(update(AuthSession).values(**changes))


async def test_idle_and_absolute_limits_end_sessions(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "idle@example.com", "billing")
    idle = await clinic_a.login("idle@example.com")
    now = datetime.datetime.now(datetime.UTC)

    await _age_sessions(engine, clinic_a, last_seen_at=now - datetime.timedelta(hours=13))
    assert (
        await clinic_a.call("POST", "/auth/refresh", json={"refreshToken": idle["refreshToken"]})
    ).status_code == 401
    assert (await clinic_a.call("GET", "/auth/me", idle["accessToken"])).status_code == 401

    capped = await clinic_a.login("idle@example.com")
    await _age_sessions(
        engine, clinic_a, expires_at=now - datetime.timedelta(seconds=1), last_seen_at=now
    )
    assert (
        await clinic_a.call("POST", "/auth/refresh", json={"refreshToken": capped["refreshToken"]})
    ).status_code == 401


async def test_browser_cookie_variant(clinic_a: ClinicApi, engine: AsyncEngine) -> None:
    await add_user(engine, clinic_a.tenant, "cookie@example.com", "patient")
    login = await clinic_a.call(
        "POST",
        "/auth/login",
        json={
            "email": "cookie@example.com",
            "password": "correct-horse-battery-9",
            "useCookies": True,
        },
    )
    assert login.status_code == 200
    body = login.json()["data"]
    assert body["accessToken"] is None and body["refreshToken"] is None
    cookies = login.headers.get_list("set-cookie")
    assert any(
        c.startswith("pc_access=")
        and "HttpOnly" in c
        and "Secure" in c
        and "samesite=strict" in c.lower()
        for c in cookies
    )
    access = login.cookies["pc_access"]
    refresh = login.cookies["pc_refresh"]

    me = await clinic_a.call("GET", "/auth/me", headers={"cookie": f"pc_access={access}"})
    assert me.status_code == 200
    own_page = {"origin": f"https://{clinic_a.host}"}
    cross_site = await clinic_a.call(
        "POST",
        "/auth/refresh",
        json={},
        headers={"cookie": f"pc_refresh={refresh}", "origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    refreshed = await clinic_a.call(
        "POST", "/auth/refresh", json={}, headers={"cookie": f"pc_refresh={refresh}", **own_page}
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["data"]["refreshToken"] is None
    assert refreshed.cookies["pc_refresh"] != refresh

    # A change riding on the cookie must come from the clinic's own pages, as JSON.
    access = refreshed.cookies["pc_access"]
    sibling = {"cookie": f"pc_access={access}", "origin": f"https://other.{clinic_a.host}"}
    no_origin = {"cookie": f"pc_access={access}"}
    form = {"cookie": f"pc_access={access}", **own_page, "content-type": "text/plain"}
    for headers in (sibling, no_origin):
        refused = await clinic_a.call("POST", "/auth/logout-all", json={}, headers=headers)
        assert refused.status_code == 403, headers
    plain = await clinic_a.call("POST", "/auth/logout-all", content=b"{}", headers=form)
    assert plain.status_code == 403
    allowed = await clinic_a.call(
        "POST", "/auth/logout-all", json={}, headers={"cookie": f"pc_access={access}", **own_page}
    )
    assert allowed.status_code == 200


async def test_shorter_idle_timeout_comes_from_settings(
    database_url: str, two_clinics: tuple
) -> None:  # type: ignore[type-arg]
    app = create_app(make_settings(database_url, SESSION_IDLE_TIMEOUT="1"))
    clinic = ClinicApi(Client(app), two_clinics[0])
    await add_user(app.state.runtime.engine, clinic.tenant, "short@example.com", "patient")
    tokens = await clinic.login("short@example.com")
    import asyncio

    await asyncio.sleep(1.2)
    assert (await clinic.call("GET", "/auth/me", tokens["accessToken"])).status_code == 401
    await app.state.runtime.engine.dispose()
    await app.state.runtime.redis.aclose()


async def test_two_refreshes_at_once_keep_the_session(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    import asyncio

    await add_user(engine, clinic_a.tenant, "two-tabs@example.com", "patient")
    tokens = await clinic_a.login("two-tabs@example.com")
    body = {"refreshToken": tokens["refreshToken"]}

    first, second = await asyncio.gather(
        clinic_a.call("POST", "/auth/refresh", json=body),
        clinic_a.call("POST", "/auth/refresh", json=body),
    )

    assert sorted([first.status_code, second.status_code]) == [200, 401]
    winner = (first if first.status_code == 200 else second).json()["data"]
    assert (await clinic_a.call("GET", "/auth/me", winner["accessToken"])).status_code == 200
    again = await clinic_a.call(
        "POST", "/auth/refresh", json={"refreshToken": winner["refreshToken"]}
    )
    assert again.status_code == 200
