"""Messaging channels: the provider each channel of a clinic uses (SMTP, SES, Twilio, SNS,
Meta), its settings and its write-only sealed credentials, and the platform's default providers."""
