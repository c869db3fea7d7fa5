"""The permission matrix, exhaustively: every role against every protected clinic route.

The cases are generated from the app's routes and the matrix, not listed by hand.
"""

from __future__ import annotations

import re
import uuid

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.identity.permissions.guards import permission_of
from polyclinic.identity.permissions.matrix import MATRIX, as_markdown, is_public
from polyclinic.identity.permissions.roles import Role
from tests.identity.conftest import ClinicApi, add_user


def clinic_routes(app: Litestar) -> list[tuple[str, str, tuple[str, str] | None]]:
    routes = []
    for route in app.routes:
        if not route.path.startswith("/api/"):
            continue
        for method, handler in getattr(route, "route_handler_map", {}).items():
            if method in ("OPTIONS", "HEAD"):
                continue
            routes.append(
                (
                    method,
                    route.path,
                    permission_of(handler[0] if isinstance(handler, tuple) else handler),
                )
            )
    return routes


def concrete(path: str) -> str:
    return re.sub(r"\{\w+:uuid\}", str(uuid.uuid4()), path).removeprefix("/api/v1")


def test_every_clinic_route_has_a_rule_in_the_matrix(app: Litestar) -> None:
    routes = clinic_routes(app)
    assert len(routes) >= 15
    missing = [(m, p) for m, p, permission in routes if permission is None]
    assert missing == []


def test_the_matrix_renders_as_a_table() -> None:
    table = as_markdown().splitlines()
    assert table[0].startswith("| resource | action | clinic_admin |")
    assert len(table) == len(MATRIX) + 2


async def test_every_role_against_every_protected_route(
    app: Litestar, clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    for role in Role:
        await add_user(engine, clinic_a.tenant, f"{role.value}@matrix.example", role.value)
    checked = 0
    for method, path, permission in clinic_routes(app):
        assert permission is not None
        if is_public(permission):
            continue
        anonymous = await clinic_a.call(method, concrete(path), json={})
        assert anonymous.status_code == 401, (method, path)
        for role in Role:
            # A fresh sign-in each time: some routes (logout) end the session they run in.
            token = (await clinic_a.login(f"{role.value}@matrix.example"))["accessToken"]
            response = await clinic_a.call(method, concrete(path), token, json={})
            if role in MATRIX[permission]:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
                assert response.status_code < 500, (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert response.json()["message"] == "Your role does not allow this"
            checked += 1
    assert checked >= 6 * 8


def test_the_readme_shows_the_current_matrix() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- permission-matrix -->\n", 1)[1].split(
        "\n<!-- /permission-matrix -->"
    )[0]
    assert block == as_markdown()


async def test_a_patient_reads_only_their_own_record(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    me = await add_user(engine, clinic_a.tenant, "me@patients.example", "patient")
    other = await add_user(engine, clinic_a.tenant, "other@patients.example", "patient")
    await add_user(engine, clinic_a.tenant, "desk@patients.example", "receptionist")
    patient = (await clinic_a.login("me@patients.example"))["accessToken"]
    desk = (await clinic_a.login("desk@patients.example"))["accessToken"]

    own = await clinic_a.call("GET", f"/patients/{me.id}", patient)
    someone_else = await clinic_a.call("GET", f"/patients/{other.id}", patient)
    nobody = await clinic_a.call("GET", f"/patients/{uuid.uuid4()}", patient)
    assert own.status_code == 200 and own.json()["data"]["email"] == "me@patients.example"
    assert someone_else.status_code == nobody.status_code == 404
    assert someone_else.json() == nobody.json()

    assert (await clinic_a.call("GET", f"/patients/{other.id}", desk)).status_code == 200
    found = await clinic_a.call("GET", "/patients?q=OTHER@", desk)
    assert [p["email"] for p in found.json()["data"]] == ["other@patients.example"]
    assert (await clinic_a.call("GET", "/patients", patient)).status_code == 403

    # Another clinic holds a patient with the same id: each clinic sees only its own.
    await add_user(engine, clinic_b.tenant, "twin@patients.example", "patient", id=other.id)
    await add_user(engine, clinic_b.tenant, "desk@patients.example", "receptionist")
    other_desk = (await clinic_b.login("desk@patients.example"))["accessToken"]
    twin = await clinic_b.call("GET", f"/patients/{other.id}", other_desk)
    assert twin.json()["data"]["email"] == "twin@patients.example"
    again = await clinic_a.call("GET", f"/patients/{other.id}", desk)
    assert again.json()["data"]["email"] == "other@patients.example"
