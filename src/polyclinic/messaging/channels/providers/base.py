"""What every provider offers: one async `send`, answering the provider's message id."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import msgspec

from polyclinic.errors import UpstreamFailed

EmailAddress = Annotated[
    str,
    msgspec.Meta(
        max_length=320,
        pattern=r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$",
        description="an email address, e.g. front-desk@clinic.example",
    ),
]
E164 = r"\+[1-9]\d{6,14}"
PhoneNumber = Annotated[
    str,
    msgspec.Meta(pattern=f"^{E164}$", description="a phone number in E.164 form, e.g. +4930123456"),
]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
AwsRegion = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$", description="an AWS region, e.g. eu-central-1"
    ),
]
_PHONE = re.compile(f"^{E164}$")
MASK = "••••"


def is_phone_number(value: str | None) -> bool:
    return value is not None and _PHONE.match(value) is not None


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one recipient. `idempotency_key` is the same on every attempt of one
    delivery; it reaches the provider wherever the provider takes one."""

    channel: str
    to: str
    body: str = field(repr=False)  # may hold a one-time link
    idempotency_key: str
    subject: str | None = None


class Provider(Protocol):
    name: str
    channel: str

    async def send(self, message: OutgoingMessage) -> str:
        """Hand the message over; the provider's message id. Raises `UpstreamFailed` with
        the provider's reason when it refuses or cannot be reached."""
        ...


def redact(text: str, secrets: Iterable[str]) -> str:
    """A provider's answer with any of the clinic's secrets masked, should it echo one."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def refused(provider: str, reason: str, secrets: Iterable[str]) -> UpstreamFailed:
    return UpstreamFailed(f"{provider} refused the message: {redact(reason, secrets)}")


class OutcomeUnknown(UpstreamFailed):
    """The request left but no answer came (a read timeout, a dropped connection): the
    provider may have the message, so it is not sent again on its own."""


def unreachable(provider: str, exc: BaseException) -> UpstreamFailed:
    return UpstreamFailed(f"{provider} could not be reached ({type(exc).__name__})")


def unanswered(provider: str, exc: BaseException) -> OutcomeUnknown:
    return OutcomeUnknown(f"{provider} took the request but gave no answer ({type(exc).__name__})")


def json_or_none(content: bytes) -> Any:
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None
