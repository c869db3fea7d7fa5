"""The channel settings API: each clinic's providers, checked when saved, secrets sealed and
never shown, and test messages through the clinic's own provider with its own credentials:
a real SMTP server (aiosmtpd), SES and SNS in moto, Twilio and Meta through local stand-ins."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import msgspec
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.session import clinic_transaction
from polyclinic.messaging.channels.models import ChannelSecret, ChannelSetting
from polyclinic.messaging.channels.providers import OutgoingMessage
from polyclinic.messaging.channels.services import provider_for
from polyclinic.tenancy.models import Tenant
from tests.conftest import Client
from tests.identity.conftest import PASSWORD, ClinicApi, add_user
from tests.messaging import delivery_kit
from tests.messaging.conftest import info, new_master_key
from tests.messaging.http_stand_in import HttpStandIn
from tests.messaging.meta_stand_in import MetaStandIn
from tests.messaging.smtp_stand_in import REFUSED_DOMAIN, SmtpServer, SmtpStandIn
from tests.messaging.twilio_stand_in import UNREACHABLE_NUMBER, TwilioStandIn

REGION = "eu-central-1"


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[HttpStandIn]:
    with HttpStandIn(TwilioStandIn()) as server:
        yield server


@pytest.fixture(scope="module")
def meta_server() -> Iterator[HttpStandIn]:
    with HttpStandIn(MetaStandIn()) as server:
        yield server


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer(SmtpStandIn()) as server:
        yield server


@pytest.fixture
def twilio(twilio_server: HttpStandIn) -> TwilioStandIn:
    return twilio_server.stand_in  # type: ignore[return-value]


@pytest.fixture
def meta(meta_server: HttpStandIn) -> MetaStandIn:
    return meta_server.stand_in  # type: ignore[return-value]


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpStandIn:
    return smtp_server.stand_in


@pytest.fixture
def channel_settings(
    settings: Settings, twilio_server: HttpStandIn, meta_server: HttpStandIn
) -> Settings:
    return msgspec.structs.replace(
        settings,
        messaging_master_key=new_master_key(),
        twilio_api_base=twilio_server.base,
        meta_graph_api_base=meta_server.base,
    )


# The app on this module's `channel_settings`.
client = delivery_kit.client


@dataclass
class Api(ClinicApi):
    """A clinic's API that keeps every response body, to look for secrets in them."""

    bodies: list[str] = field(default_factory=list)

    async def call(self, method: str, path: str, token: str | None = None, **kwargs: Any):  # type: ignore[no-untyped-def, override]
        response: httpx.Response = await super().call(method, path, token, **kwargs)
        self.bodies.append(response.text)
        return response


@pytest.fixture
def apis(client: Client, clinics: tuple[Tenant, Tenant]) -> tuple[Api, Api]:
    return Api(client, clinics[0]), Api(client, clinics[1])


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def admin(api: Api, engine: AsyncEngine, phone: str | None = None, email: str = "") -> str:
    email = email or f"admin-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, api.tenant, email, "clinic_admin", phone=phone)
    return (await api.login(email, PASSWORD))["accessToken"]


def assert_no_secret(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text


@contextmanager
def quiet_botocore() -> Iterator[None]:
    """The tests' own IAM calls carry access keys, which botocore logs at DEBUG: only the
    app's logs are looked at."""
    logger = logging.getLogger("botocore")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def aws_key(user: str) -> tuple[str, str]:
    """An access key of a new IAM user in moto, so its last use can be looked up."""
    with quiet_botocore():
        iam = boto3.client("iam")
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def last_use(access_key_id: str) -> dict[str, Any]:
    with quiet_botocore():
        answer = boto3.client("iam").get_access_key_last_used(AccessKeyId=access_key_id)
    return answer["AccessKeyLastUsed"]  # type: ignore[no-any-return]


async def stored_rows(engine: AsyncEngine, tenant: Tenant) -> tuple[int, list[ChannelSecret]]:
    async with clinic_transaction(engine, info(tenant)) as session:
        settings = await session.scalar(select(func.count()).select_from(ChannelSetting))
        secrets = list(await session.scalars(select(ChannelSecret)))
    return settings or 0, secrets


def smtp_body(port: int, user: str, password: str) -> dict[str, Any]:
    return {
        "provider": "smtp",
        "settings": {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "username": user,
            "fromAddress": "front-desk@riverside.example",
            "fromName": "Riverside Clinic",
        },
        "secrets": {"password": password},
    }


async def test_smtp_channel_is_saved_masked_and_sends_a_real_test_message(
    apis: tuple[Api, Api],
    engine: AsyncEngine,
    smtp_server: SmtpServer,
    smtp: SmtpStandIn,
    logs: pytest.LogCaptureFixture,
) -> None:
    a, _ = apis
    password = f"smtp-Pass-{uuid.uuid4().hex}"
    user = f"mailer-{uuid.uuid4().hex[:6]}"
    smtp.accounts[user] = password
    token = await admin(a, engine, email="owner@riverside.example")

    saved = await a.call(
        "PUT", "/messaging/channels/email", token, json=smtp_body(smtp_server.port, user, password)
    )
    assert saved.status_code == 200, saved.text
    data = saved.json()["data"]
    assert data["provider"] == "smtp"
    assert data["settings"]["fromAddress"] == "front-desk@riverside.example"
    assert data["settings"]["security"] == "none"
    assert data["secrets"] == [{"name": "password", "masked": "••••" + password[-4:]}]

    shown = await a.call("GET", "/messaging/channels/email", token)
    assert shown.json()["data"] == data
    listed = await a.call("GET", "/messaging/channels", token)
    assert [c["channel"] for c in listed.json()["data"]] == ["email"]

    sent = await a.call("POST", "/messaging/channels/email/test", token)
    assert sent.status_code == 200, sent.text
    result = sent.json()["data"]
    assert result["provider"] == "smtp"
    assert result["to"] == "owner@riverside.example"
    [received] = [
        r for r in smtp.received if r.message["Message-ID"] == result["providerMessageId"]
    ]
    assert received.login == user  # AUTH took the stored password
    assert (user, True) in smtp.logins
    assert received.mail_from == "front-desk@riverside.example"
    assert received.rcpt_tos == ["owner@riverside.example"]
    assert received.message["From"] == "Riverside Clinic <front-desk@riverside.example>"
    assert received.message["To"] == "owner@riverside.example"
    assert received.message["Subject"] == f"Test message from {a.tenant.name}"

    _, rows = await stored_rows(engine, a.tenant)
    assert [(r.channel, r.provider, r.name) for r in rows] == [("email", "smtp", "password")]
    assert password.encode() not in rows[0].blob
    assert_no_secret([password], logs.text, *a.bodies)


async def test_two_clinics_each_send_through_their_own_providers_and_credentials(
    apis: tuple[Api, Api],
    engine: AsyncEngine,
    aws: None,
    smtp_server: SmtpServer,
    smtp: SmtpStandIn,
    twilio: TwilioStandIn,
    meta: MetaStandIn,
    logs: pytest.LogCaptureFixture,
) -> None:
    a, b = apis
    a_phone, b_phone = "+4930111111", "+4930222222"
    token_a = await admin(a, engine, phone=a_phone, email="owner@a.example")
    token_b = await admin(b, engine, phone=b_phone, email="owner@b.example")

    # Clinic A: SMTP, Twilio SMS, Meta WhatsApp.
    smtp_user, smtp_password = f"a-{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    smtp.accounts[smtp_user] = smtp_password
    sid_a, twilio_token_a = twilio.add_account()
    number_a, meta_token_a = meta.add_number()
    # Clinic B: SES, SNS, Twilio WhatsApp, each with its own AWS key.
    ses_key, ses_secret = aws_key("clinic-b-ses")
    sns_key, sns_secret = aws_key("clinic-b-sns")
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity="hilltop.example")
    sid_b, twilio_token_b = twilio.add_account()
    secrets = [
        smtp_password,
        twilio_token_a,
        meta_token_a,
        ses_key,
        ses_secret,
        sns_key,
        sns_secret,
        twilio_token_b,
    ]

    for api, token, channel, body in [
        (a, token_a, "email", smtp_body(smtp_server.port, smtp_user, smtp_password)),
        (
            a,
            token_a,
            "sms",
            {
                "provider": "twilio",
                "settings": {"accountSid": sid_a, "fromNumber": "+4930999000"},
                "secrets": {"authToken": twilio_token_a},
            },
        ),
        (
            a,
            token_a,
            "whatsapp",
            {
                "provider": "meta",
                "settings": {"phoneNumberId": number_a},
                "secrets": {"accessToken": meta_token_a},
            },
        ),
        (
            b,
            token_b,
            "email",
            {
                "provider": "ses",
                "settings": {"region": REGION, "fromAddress": "desk@hilltop.example"},
                "secrets": {"accessKeyId": ses_key, "secretAccessKey": ses_secret},
            },
        ),
        (
            b,
            token_b,
            "sms",
            {
                "provider": "sns",
                "settings": {"region": REGION, "senderId": "Hilltop"},
                "secrets": {"accessKeyId": sns_key, "secretAccessKey": sns_secret},
            },
        ),
        (
            b,
            token_b,
            "whatsapp",
            {
                "provider": "twilio",
                "settings": {"accountSid": sid_b, "fromNumber": "whatsapp:+14155238886"},
                "secrets": {"authToken": twilio_token_b},
            },
        ),
    ]:
        saved = await api.call("PUT", f"/messaging/channels/{channel}", token, json=body)
        assert saved.status_code == 200, (channel, saved.text)

    sent: dict[tuple[str, str], dict[str, Any]] = {}
    for api, token, name in ((a, token_a, "a"), (b, token_b, "b")):
        for channel in ("email", "sms", "whatsapp"):
            response = await api.call("POST", f"/messaging/channels/{channel}/test", token)
            assert response.status_code == 200, (name, channel, response.text)
            sent[name, channel] = response.json()["data"]

    assert {k: v["provider"] for k, v in sent.items()} == {
        ("a", "email"): "smtp",
        ("a", "sms"): "twilio",
        ("a", "whatsapp"): "meta",
        ("b", "email"): "ses",
        ("b", "sms"): "sns",
        ("b", "whatsapp"): "twilio",
    }
    # A: SMTP as its own user, Twilio on its own account, Meta on its own number.
    [mail] = [
        r
        for r in smtp.received
        if r.message["Message-ID"] == sent["a", "email"]["providerMessageId"]
    ]
    assert mail.login == smtp_user and mail.rcpt_tos == ["owner@a.example"]
    [sms_a] = [m for m in twilio.messages if m.sid == sent["a", "sms"]["providerMessageId"]]
    assert (sms_a.account_sid, sms_a.to, sms_a.from_) == (sid_a, a_phone, "+4930999000")
    assert sms_a.idempotency_token
    [wa_a] = [m for m in meta.messages if m.id == sent["a", "whatsapp"]["providerMessageId"]]
    assert (wa_a.phone_number_id, wa_a.to) == (number_a, a_phone.removeprefix("+"))
    assert a.tenant.name in wa_a.body
    # B: SES and SNS with its own keys, Twilio WhatsApp on its own account.
    [ses_mail] = [
        m
        for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        if m.id == sent["b", "email"]["providerMessageId"]
    ]
    assert ses_mail.source == "desk@hilltop.example"
    assert ses_mail.destinations["ToAddresses"] == ["owner@b.example"]
    assert ses_mail.subject == f"Test message from {b.tenant.name}"
    sms_b = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages[
        sent["b", "sms"]["providerMessageId"]
    ]
    assert sms_b[0] == b_phone
    assert last_use(ses_key)["ServiceName"] == "sesv2"
    assert last_use(sns_key)["ServiceName"] == "sns"
    assert last_use(ses_key)["Region"] == REGION
    [wa_b] = [m for m in twilio.messages if m.sid == sent["b", "whatsapp"]["providerMessageId"]]
    assert (wa_b.account_sid, wa_b.to, wa_b.from_) == (
        sid_b,
        f"whatsapp:{b_phone}",
        "whatsapp:+14155238886",
    )

    listed = await b.call("GET", "/messaging/channels", token_b)
    assert [c["provider"] for c in listed.json()["data"]] == ["ses", "sns", "twilio"]
    for name in ("a", "b"):
        _, rows = await stored_rows(engine, (a if name == "a" else b).tenant)
        for row in rows:
            assert all(secret.encode() not in row.blob for secret in secrets)
    assert_no_secret(secrets, logs.text, *a.bodies, *b.bodies)


BAD_INPUT = [
    ("email", {"provider": "postfix", "settings": {}}, "provider"),
    ("sms", {"provider": "smtp", "settings": {}}, "provider"),
    (
        "email",
        {"provider": "smtp", "settings": {"host": "mail.example.com"}, "secrets": {}},
        "settings.fromAddress",
    ),
    (
        "email",
        {
            "provider": "smtp",
            "settings": {"host": "mail.example.com", "fromAddress": "not-an-email"},
        },
        "settings.fromAddress",
    ),
    (
        "email",
        {
            "provider": "smtp",
            "settings": {"host": "mail.example.com", "fromAddress": "a@b.example", "port": 70000},
        },
        "settings.port",
    ),
    (
        "email",
        {
            "provider": "smtp",
            "settings": {"host": "mail.example.com", "fromAddress": "a@b.example", "port": "25"},
        },
        "settings.port",
    ),
    (
        "email",
        {
            "provider": "smtp",
            "settings": {"host": "mail example", "fromAddress": "a@b.example"},
        },
        "settings.host",
    ),
    (
        "email",
        {
            "provider": "smtp",
            "settings": {"host": "mail.example.com", "fromAddress": "a@b.example", "tls": True},
        },
        "settings.tls",
    ),
    (
        "email",
        {
            "provider": "smtp",
            "settings": {
                "host": "mail.example.com",
                "fromAddress": "a@b.example",
                "security": "tls",
            },
        },
        "settings.security",
    ),
    (
        "email",
        {
            "provider": "smtp",
            "settings": {"host": "mail.example.com", "fromAddress": "a@b.example", "username": "u"},
        },
        "secrets.password",
    ),
    (
        "email",
        {"provider": "ses", "settings": {"region": "Frankfurt", "fromAddress": "a@b.example"}},
        "settings.region",
    ),
    (
        "email",
        {"provider": "ses", "settings": {"region": "eu-west-1", "fromAddress": "a@b.example"}},
        "secrets.accessKeyId",
    ),
    (
        "sms",
        {
            "provider": "twilio",
            "settings": {"accountSid": "AC" + "a" * 32, "fromNumber": "030 1234567"},
            "secrets": {"authToken": "b" * 32},
        },
        "settings.fromNumber",
    ),
    (
        "sms",
        {
            "provider": "twilio",
            "settings": {"accountSid": "AC123", "fromNumber": "+4930123456"},
            "secrets": {"authToken": "b" * 32},
        },
        "settings.accountSid",
    ),
    (
        "sms",
        {
            "provider": "twilio",
            "settings": {"accountSid": "AC" + "a" * 32, "fromNumber": "+4930123456"},
            "secrets": {"authToken": "short-token-value"},
        },
        "secrets.authToken",
    ),
    (
        "sms",
        {
            "provider": "twilio",
            "settings": {"accountSid": "AC" + "a" * 32, "fromNumber": "+4930123456"},
            "secrets": {"authToken": "b" * 32, "apiKey": "short-token-value"},
        },
        "secrets.apiKey",
    ),
    (
        "sms",
        {"provider": "sns", "settings": {"region": "eu-west-1", "senderId": "Far-Too-Long-Id"}},
        "settings.senderId",
    ),
    (
        "whatsapp",
        {
            "provider": "twilio",
            "settings": {"accountSid": "AC" + "a" * 32, "fromNumber": "+14155238886"},
            "secrets": {"authToken": "b" * 32},
        },
        "settings.fromNumber",
    ),
    (
        "whatsapp",
        {
            "provider": "meta",
            "settings": {"phoneNumberId": "not-a-number"},
            "secrets": {"accessToken": "short-token-value"},
        },
        "settings.phoneNumberId",
    ),
    (
        "whatsapp",
        {
            "provider": "meta",
            "settings": {"phoneNumberId": "1234567890"},
            "secrets": {"accessToken": "short-token-value"},
        },
        "secrets.accessToken",
    ),
]


@pytest.mark.parametrize(("channel", "body", "named"), BAD_INPUT)
async def test_invalid_settings_are_refused_naming_the_field_and_nothing_is_stored(
    apis: tuple[Api, Api],
    engine: AsyncEngine,
    channel: str,
    body: dict[str, Any],
    named: str,
    logs: pytest.LogCaptureFixture,
) -> None:
    a, _ = apis
    token = await admin(a, engine)
    response = await a.call("PUT", f"/messaging/channels/{channel}", token, json=body)
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert named in fields, response.text
    assert (await a.call("GET", f"/messaging/channels/{channel}", token)).status_code == 404
    assert await stored_rows(engine, a.tenant) == (0, [])
    assert_no_secret([str(v) for v in body.get("secrets", {}).values()], logs.text, *a.bodies)


async def test_an_unknown_channel_is_not_found(apis: tuple[Api, Api], engine: AsyncEngine) -> None:
    a, _ = apis
    token = await admin(a, engine)
    for method, path in (
        ("GET", "/messaging/channels/fax"),
        ("PUT", "/messaging/channels/fax"),
        ("DELETE", "/messaging/channels/fax"),
        ("POST", "/messaging/channels/fax/test"),
    ):
        response = await a.call(method, path, token, json={"provider": "smtp"})
        assert response.status_code == 404, (method, response.text)


async def test_secrets_are_kept_when_left_out_and_dropped_with_their_provider(
    apis: tuple[Api, Api],
    engine: AsyncEngine,
    twilio: TwilioStandIn,
    logs: pytest.LogCaptureFixture,
) -> None:
    a, _ = apis
    token = await admin(a, engine, phone="+4930333333")
    sid, auth_token = twilio.add_account()
    twilio_body = {
        "provider": "twilio",
        "settings": {"accountSid": sid, "fromNumber": "+4930999001"},
        "secrets": {"authToken": auth_token},
    }
    assert (
        await a.call("PUT", "/messaging/channels/sms", token, json=twilio_body)
    ).status_code == 200

    # Same provider, secrets left out: the stored token stays and still authenticates.
    changed = await a.call(
        "PUT",
        "/messaging/channels/sms",
        token,
        json={"provider": "twilio", "settings": {"accountSid": sid, "fromNumber": "+4930999002"}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["settings"]["fromNumber"] == "+4930999002"
    assert changed.json()["data"]["secrets"] == [
        {"name": "authToken", "masked": "••••" + auth_token[-4:]}
    ]
    sent = await a.call("POST", "/messaging/channels/sms/test", token)
    assert sent.status_code == 200, sent.text
    [message] = [m for m in twilio.messages if m.sid == sent.json()["data"]["providerMessageId"]]
    assert message.from_ == "+4930999002"

    # Another provider needs its own secrets, and the old provider's are deleted.
    sns = {"provider": "sns", "settings": {"region": REGION}}
    refused = await a.call("PUT", "/messaging/channels/sms", token, json=sns)
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {
        "secrets.accessKeyId",
        "secrets.secretAccessKey",
    }
    aws_secrets = {"accessKeyId": "AKIA" + "B" * 16, "secretAccessKey": "s" * 40}
    switched = await a.call(
        "PUT", "/messaging/channels/sms", token, json={**sns, "secrets": aws_secrets}
    )
    assert switched.status_code == 200, switched.text
    assert [s["name"] for s in switched.json()["data"]["secrets"]] == [
        "accessKeyId",
        "secretAccessKey",
    ]
    _, rows = await stored_rows(engine, a.tenant)
    assert {(r.provider, r.name) for r in rows} == {
        ("sns", "accessKeyId"),
        ("sns", "secretAccessKey"),
    }

    deleted = await a.call("DELETE", "/messaging/channels/sms", token)
    assert deleted.status_code == 200, deleted.text
    assert (await a.call("GET", "/messaging/channels/sms", token)).status_code == 404
    assert (await a.call("DELETE", "/messaging/channels/sms", token)).status_code == 404
    assert await stored_rows(engine, a.tenant) == (0, [])
    assert_no_secret([auth_token, *aws_secrets.values()], logs.text, *a.bodies)


async def test_provider_refusals_answer_502_with_the_reason_and_no_secret(
    apis: tuple[Api, Api],
    engine: AsyncEngine,
    aws: None,
    smtp_server: SmtpServer,
    smtp: SmtpStandIn,
    twilio: TwilioStandIn,
    meta: MetaStandIn,
    logs: pytest.LogCaptureFixture,
) -> None:
    a, b = apis
    token = await admin(a, engine, phone=UNREACHABLE_NUMBER, email=f"nobody@{REFUSED_DOMAIN}")
    user, password = f"r-{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    smtp.accounts[user] = password
    sid, auth_token = twilio.add_account()
    number, meta_token = meta.add_number()
    wrong_token = uuid.uuid4().hex
    secrets = [password, auth_token, meta_token, wrong_token]

    async def save(channel: str, body: dict[str, Any]) -> None:
        response = await a.call("PUT", f"/messaging/channels/{channel}", token, json=body)
        assert response.status_code == 200, response.text

    async def refusal(channel: str) -> str:
        response = await a.call("POST", f"/messaging/channels/{channel}/test", token)
        assert response.status_code == 502, response.text
        return response.json()["message"]  # type: ignore[no-any-return]

    await save("email", smtp_body(smtp_server.port, user, password))
    assert "550" in await refusal("email")
    await save("email", smtp_body(smtp_server.port, user, wrong_token))
    assert "535" in await refusal("email")

    twilio_sms = {
        "provider": "twilio",
        "settings": {"accountSid": sid, "fromNumber": "+4930999003"},
    }
    await save("sms", {**twilio_sms, "secrets": {"authToken": auth_token}})
    assert "21612" in await refusal("sms")
    await save("sms", {**twilio_sms, "secrets": {"authToken": wrong_token}})
    assert "Authenticate" in await refusal("sms")

    await save(
        "whatsapp",
        {
            "provider": "meta",
            "settings": {"phoneNumberId": number},
            "secrets": {"accessToken": wrong_token * 2},
        },
    )
    assert "Invalid OAuth access token" in await refusal("whatsapp")

    # SES refuses a sender the clinic's account has not verified.
    key, secret = aws_key("clinic-a-ses")
    secrets += [key, secret]
    await save(
        "email",
        {
            "provider": "ses",
            "settings": {"region": REGION, "fromAddress": "desk@unverified.example"},
            "secrets": {"accessKeyId": key, "secretAccessKey": secret},
        },
    )
    assert "MessageRejected" in await refusal("email")

    # An address nothing listens on: unreachable, still a 502.
    await save(
        "email",
        {
            "provider": "smtp",
            "settings": {
                "host": "127.0.0.1",
                "port": 1,
                "security": "none",
                "fromAddress": "a@b.example",
            },
        },
    )
    assert "could not be reached" in await refusal("email")
    assert_no_secret(secrets, logs.text, *a.bodies, *b.bodies)


async def test_a_test_message_needs_the_callers_phone_number(
    apis: tuple[Api, Api], engine: AsyncEngine, twilio: TwilioStandIn
) -> None:
    a, _ = apis
    token = await admin(a, engine)
    no_provider = await a.call("POST", "/messaging/channels/email/test", token)
    assert no_provider.status_code == 404
    sid, auth_token = twilio.add_account()
    body = {
        "provider": "twilio",
        "settings": {"accountSid": sid, "fromNumber": "+4930999004"},
        "secrets": {"authToken": auth_token},
    }
    assert (await a.call("PUT", "/messaging/channels/sms", token, json=body)).status_code == 200
    response = await a.call("POST", "/messaging/channels/sms/test", token)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["phone"]


async def test_only_the_clinic_admin_sees_or_changes_channels(
    apis: tuple[Api, Api], engine: AsyncEngine
) -> None:
    a, _ = apis
    email = f"desk-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, a.tenant, email, "receptionist")
    token = (await a.login(email))["accessToken"]
    assert (await a.call("GET", "/messaging/channels", token)).status_code == 403
    response = await a.call("PUT", "/messaging/channels/email", token, json={"provider": "smtp"})
    assert response.status_code == 403


async def test_provider_for_builds_the_clinics_provider_and_passes_the_idempotency_key(
    apis: tuple[Api, Api],
    engine: AsyncEngine,
    channel_settings: Settings,
    twilio: TwilioStandIn,
) -> None:
    a, b = apis
    token = await admin(a, engine)
    sid, auth_token = twilio.add_account()
    body = {
        "provider": "twilio",
        "settings": {"accountSid": sid, "fromNumber": "+4930999005"},
        "secrets": {"authToken": auth_token},
    }
    assert (await a.call("PUT", "/messaging/channels/sms", token, json=body)).status_code == 200

    async with clinic_transaction(engine, info(b.tenant)) as session:
        assert await provider_for(session, channel_settings, "sms") is None
    async with clinic_transaction(engine, info(a.tenant)) as session:
        provider = await provider_for(session, channel_settings, "sms")
    assert provider is not None
    assert (provider.name, provider.channel) == ("twilio", "sms")
    message = OutgoingMessage(
        channel="sms", to="+4930444444", body="Your appointment", idempotency_key="delivery-1"
    )
    first = await provider.send(message)
    again = await provider.send(message)  # a retried delivery: Twilio answers the first
    assert first == again
    assert [m.sid for m in twilio.messages if m.idempotency_token == "delivery-1"] == [first]
