"""Every kind of bad token on a clinic host gets 401 in the envelope, and reveals nothing."""

from __future__ import annotations

import base64
import json
import time
import uuid

from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.web.tokens import TokenSigner, clinic_audience
from tests.identity.conftest import ClinicApi, add_user


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_bad_tokens_on_a_clinic_host(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine, settings: Settings
) -> None:
    await add_user(engine, clinic_a.tenant, "holder@example.com", "patient")
    good = (await clinic_a.login("holder@example.com"))["accessToken"]
    claims = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))
    head, _, signature = good.split(".")
    now = int(time.time())
    key = OctKey.import_key(settings.jwt_signing_key.encode())
    header = {"alg": "HS256", "kid": settings.jwt_key_id}
    forged = {
        "malformed": "not.a.token",
        "tampered role": ".".join(
            [head, b64(json.dumps({**claims, "role": "clinic_admin"}).encode()), signature]
        ),
        "alg none": ".".join(
            [b64(b'{"alg":"none","typ":"JWT"}'), b64(json.dumps(claims).encode()), ""]
        ),
        "wrong key": jwt.encode(header, claims, OctKey.import_key(b"x" * 40)),
        "expired": jwt.encode(header, {**claims, "iat": now - 7200, "exp": now - 3600}, key),
        "other clinic": jwt.encode(
            header, {**claims, "aud": clinic_audience(clinic_b.tenant.id)}, key
        ),
        "platform audience": TokenSigner(settings).issue(uuid.UUID(claims["sub"]), "platform"),
        "unknown session": jwt.encode(header, {**claims, "sid": str(uuid.uuid4())}, key),
    }
    assert (await clinic_a.call("GET", "/auth/me", good)).status_code == 200
    messages = set()
    for label, token in forged.items():
        response = await clinic_a.call("GET", "/auth/me", token)
        assert response.status_code == 401, label
        body = response.json()
        assert body["success"] is False and body["statusCode"] == 401
        messages.add(body["message"])
    assert len(messages) <= 2  # invalid token, or ended session: nothing more specific
