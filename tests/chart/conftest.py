"""Chart tests use the identity tests' clinic helpers and the scheduling tests' bookable
clinic."""

from __future__ import annotations

from tests.identity.conftest import clinic_a, clinic_b, mailer  # noqa: F401
