"""What can go wrong with messaging keys. No message ever carries a key or a secret."""

from __future__ import annotations

from polyclinic.errors import DomainError, Unavailable


class SecretUnreadable(DomainError):
    """A sealed value does not open here: it belongs to another clinic, channel, provider or
    key version, or it was altered. Never answered with a guess."""

    status_code = 500


class MasterKeyUnavailable(Unavailable):
    """No master key is configured, so nothing can be sealed."""


class MasterKeyMismatch(Unavailable):
    """The configured master key is not the one the data keys are wrapped with."""
