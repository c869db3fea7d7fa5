"""Super-admin sign-in and the tokens that guard the platform API."""

from __future__ import annotations

import base64
import json
import time
import uuid

from joserfc import jwt
from joserfc.jwk import OctKey

from polyclinic.config import Settings
from polyclinic.identity.accounts.passwords import hash_password, verify_password
from polyclinic.web.tokens import PLATFORM_AUDIENCE, TokenSigner
from tests.conftest import Client


def test_passwords_are_argon2id_and_verify() -> None:
    encoded = hash_password("correct horse battery")
    assert encoded.startswith("$argon2id$")
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("wrong horse battery", encoded)
    assert not verify_password("anything", None)


async def test_login_returns_a_short_lived_bearer_token(
    client: Client, super_admin: tuple[str, str], settings: Settings
) -> None:
    email, password = super_admin
    response = await client.platform(
        "POST", "/platform/v1/auth/login", json={"email": email.upper(), "password": password}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["tokenType"] == "Bearer"
    assert data["expiresIn"] == settings.access_token_ttl
    header = json.loads(base64.urlsafe_b64decode(data["accessToken"].split(".")[0] + "=="))
    assert header["kid"] == settings.jwt_key_id and header["alg"] == "HS256"
    listed = await client.platform("GET", "/platform/v1/clinics", data["accessToken"])
    assert listed.status_code == 200


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: Client, super_admin: tuple[str, str]
) -> None:
    email, _ = super_admin
    wrong = await client.platform(
        "POST", "/platform/v1/auth/login", json={"email": email, "password": "not it at all"}
    )
    unknown = await client.platform(
        "POST", "/platform/v1/auth/login", json={"email": "who@where.test", "password": "x" * 14}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "accessToken" not in wrong.text


async def test_bad_tokens_are_401(client: Client, settings: Settings, admin_token: str) -> None:
    """Every forged token names the real super-admin, so only the token itself can fail."""
    admin_id = json.loads(base64.urlsafe_b64decode(admin_token.split(".")[1] + "=="))["sub"]
    signer = TokenSigner(settings)
    now = int(time.time())
    claims = {"sub": admin_id, "aud": PLATFORM_AUDIENCE, "iat": now, "exp": now + 60}
    head, _, signature = admin_token.split(".")

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    real_key = OctKey.import_key(settings.jwt_signing_key.encode())
    other_key = OctKey.import_key(b"another-key-another-key-another-key!!")
    forged = {
        "garbage": "garbage",
        "tampered payload": ".".join(
            [head, b64(json.dumps({**claims, "exp": now + 10**6}).encode()), signature]
        ),
        "alg none": ".".join(
            [
                b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
                b64(json.dumps(claims).encode()),
                "",
            ]
        ),
        "wrong key": jwt.encode({"alg": "HS256", "kid": settings.jwt_key_id}, claims, other_key),
        "expired": jwt.encode(
            {"alg": "HS256", "kid": settings.jwt_key_id},
            {**claims, "iat": now - 3600, "exp": now - 1800},
            real_key,
        ),
        "clinic audience": signer.issue(uuid.UUID(admin_id), f"clinic:{uuid.uuid4()}"),
        "no audience": jwt.encode(
            {"alg": "HS256", "kid": settings.jwt_key_id},
            {k: v for k, v in claims.items() if k != "aud"},
            real_key,
        ),
        "unknown user": signer.issue(uuid.uuid4(), PLATFORM_AUDIENCE),
    }
    assert (await client.platform("GET", "/platform/v1/clinics", admin_token)).status_code == 200
    for label, token in forged.items():
        response = await client.platform("GET", "/platform/v1/clinics", token)
        assert response.status_code == 401, label
        assert response.json()["success"] is False
    missing = await client.platform("GET", "/platform/v1/clinics")
    assert missing.status_code == 401


def test_create_admin_command(settings: Settings, database_url: str) -> None:
    from click.testing import CliRunner

    from polyclinic.cli import main

    env = {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
    }
    email = f"ops-{uuid.uuid4().hex[:6]}@platform.test"
    runner = CliRunner()
    created = runner.invoke(
        main,
        ["platform", "create-admin", "--email", email, "--password", "long-enough-pass"],
        env=env,
    )
    again = runner.invoke(
        main,
        ["platform", "create-admin", "--email", email, "--password", "long-enough-pass"],
        env=env,
    )
    short = runner.invoke(
        main, ["platform", "create-admin", "--email", "x" + email, "--password", "short"], env=env
    )

    assert created.exit_code == 0, created.output
    assert again.exit_code != 0 and "already exists" in again.output
    assert short.exit_code != 0 and "at least 12" in short.output


async def _new_admin(settings: Settings) -> tuple[str, str]:
    from polyclinic.db.engine import create_app_engine
    from polyclinic.db.session import platform_session
    from polyclinic.platform.services import PlatformUsers

    email, password = f"mfa-{uuid.uuid4().hex[:8]}@platform.test", "a-long-admin-password"
    engine = create_app_engine(settings, pool_size=1)
    async with platform_session(engine) as session:
        await PlatformUsers(session).create_admin(email, password)
    await engine.dispose()
    return email, password


async def test_super_admin_two_factor_and_the_policy(database_url: str, settings: Settings) -> None:
    from polyclinic.app import create_app
    from tests.conftest import make_settings
    from tests.identity.test_mfa import code_for

    email, password = await _new_admin(settings)
    app = create_app(make_settings(database_url, MFA_REQUIRED_FOR_SUPER_ADMINS="true"))
    client = Client(app)

    async def login(**extra: str):  # type: ignore[no-untyped-def]
        return await client.platform(
            "POST", "/platform/v1/auth/login", json={"email": email, "password": password, **extra}
        )

    first = (await login()).json()["data"]
    assert first["mfaEnrolmentRequired"] is True
    held = await client.platform("GET", "/platform/v1/clinics", first["accessToken"])
    assert held.status_code == 403 and "two-factor" in held.json()["message"]

    setup = await client.platform("POST", "/platform/v1/auth/mfa/setup", first["accessToken"])
    secret = setup.json()["data"]["secret"]
    enabled = await client.platform(
        "POST",
        "/platform/v1/auth/mfa/enable",
        first["accessToken"],
        json={"code": code_for(secret)},
    )
    recovery = enabled.json()["data"]["recoveryCodes"]
    assert (
        await client.platform("GET", "/platform/v1/clinics", first["accessToken"])
    ).status_code == 200

    missing = await login()
    assert missing.status_code == 401 and missing.json()["errors"][0]["field"] == "totp"
    assert (await login(totp="000000")).status_code == 401
    assert (await login(totp=code_for(secret))).status_code == 401  # spent at enrolment
    assert (await login(totp=code_for(secret, time.time() + 30))).status_code == 200
    assert (await login(totp=recovery[0])).status_code == 200
    assert (await login(totp=recovery[0])).status_code == 401
    await app.state.runtime.engine.dispose()
    await app.state.runtime.redis.aclose()


async def test_super_admin_sign_in_locks_after_repeated_failures(
    client: Client, settings: Settings
) -> None:
    email, password = await _new_admin(settings)
    for _ in range(5):
        wrong = await client.platform(
            "POST",
            "/platform/v1/auth/login",
            json={"email": email, "password": "guess-guess-guess"},
        )
        assert wrong.status_code == 401
    locked = await client.platform(
        "POST", "/platform/v1/auth/login", json={"email": email, "password": password}
    )
    assert locked.status_code == 429


def test_tokens_signed_with_a_retired_key_stay_valid_and_others_do_not(settings: Settings) -> None:
    import msgspec
    import pytest

    from polyclinic.web.tokens import InvalidToken

    old = TokenSigner(msgspec.structs.replace(settings, jwt_key_id="old", jwt_signing_key="o" * 40))
    rotated = msgspec.structs.replace(
        settings, jwt_key_id="new", jwt_signing_key="n" * 40, jwt_retired_keys=(("old", "o" * 40),)
    )
    forgotten = msgspec.structs.replace(settings, jwt_key_id="new", jwt_signing_key="n" * 40)
    user = uuid.uuid4()

    token = old.issue(user, PLATFORM_AUDIENCE)

    assert TokenSigner(rotated).verify(token, PLATFORM_AUDIENCE)["sub"] == str(user)
    with pytest.raises(InvalidToken):
        TokenSigner(forgotten).verify(token, PLATFORM_AUDIENCE)
