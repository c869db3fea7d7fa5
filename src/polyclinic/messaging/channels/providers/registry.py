"""Which providers each channel offers, what each takes, and how each is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from polyclinic.config import Settings
from polyclinic.errors import FieldError
from polyclinic.messaging.channels.providers import meta, ses, smtp, sns, twilio
from polyclinic.messaging.channels.providers.aws import AwsSecrets
from polyclinic.messaging.channels.providers.base import Provider


def _no_check(settings: Any, secret_names: set[str]) -> list[FieldError]:
    return []


@dataclass(frozen=True)
class ProviderSpec:
    channel: str
    name: str
    settings_type: type[msgspec.Struct]
    secrets_type: type[msgspec.Struct]
    # (settings, secrets, platform settings) -> provider
    build: Callable[[Any, Any, Settings], Provider]
    # Rules across settings and secrets: (settings, names of the secrets given) -> errors.
    check: Callable[[Any, set[str]], list[FieldError]] = _no_check


SPECS = (
    ProviderSpec(
        "email",
        smtp.NAME,
        smtp.SmtpSettings,
        smtp.SmtpSecrets,
        lambda settings, secrets, _: smtp.SmtpProvider(settings, secrets),
        smtp.check,
    ),
    ProviderSpec(
        "email",
        ses.NAME,
        ses.SesSettings,
        AwsSecrets,
        lambda settings, secrets, _: ses.SesProvider(settings, secrets),
    ),
    ProviderSpec(
        "sms",
        twilio.NAME,
        twilio.TwilioSmsSettings,
        twilio.TwilioSecrets,
        lambda settings, secrets, config: twilio.TwilioProvider(
            "sms", settings, secrets, config.twilio_api_base
        ),
    ),
    ProviderSpec(
        "sms",
        sns.NAME,
        sns.SnsSettings,
        AwsSecrets,
        lambda settings, secrets, _: sns.SnsProvider(settings, secrets),
    ),
    ProviderSpec(
        "whatsapp",
        twilio.NAME,
        twilio.TwilioWhatsAppSettings,
        twilio.TwilioSecrets,
        lambda settings, secrets, config: twilio.TwilioProvider(
            "whatsapp", settings, secrets, config.twilio_api_base
        ),
    ),
    ProviderSpec(
        "whatsapp",
        meta.NAME,
        meta.MetaSettings,
        meta.MetaSecrets,
        lambda settings, secrets, config: meta.MetaProvider(
            settings, secrets, config.meta_graph_api_base
        ),
    ),
)
PROVIDERS: dict[str, dict[str, ProviderSpec]] = {}
for _spec in SPECS:
    PROVIDERS.setdefault(_spec.channel, {})[_spec.name] = _spec
