"""Messaging: how a clinic reaches its patients and staff.

- `keys`: per-clinic data keys under the platform's master key, and sealing secrets with them;
- `channels`: each channel's provider, its settings and sealed credentials, and the providers;
- `templates`: the wording of every message kind, per channel and locale, in Jinja's sandbox;
- `delivery`: outbox events turned into messages, sent once, logged and retryable;
- `preferences`: the channels and language each user accepts.
"""
