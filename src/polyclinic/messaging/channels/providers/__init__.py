"""The providers a clinic's messages leave through: email by SMTP or AWS SES, SMS by Twilio or
AWS SNS, WhatsApp by Twilio or the Meta Cloud API. Each speaks `Provider.send`."""

from polyclinic.messaging.channels.providers.base import OutgoingMessage, Provider
from polyclinic.messaging.channels.providers.registry import PROVIDERS, ProviderSpec

__all__ = ["PROVIDERS", "OutgoingMessage", "Provider", "ProviderSpec"]
