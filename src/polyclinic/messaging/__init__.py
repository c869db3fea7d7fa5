"""Messaging: the clinics' provider credentials, kept sealed under per-clinic data keys."""
