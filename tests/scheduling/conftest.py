"""Scheduling tests use the identity tests' clinic helpers."""

from tests.identity.conftest import clinic_a, clinic_b, mailer  # noqa: F401
