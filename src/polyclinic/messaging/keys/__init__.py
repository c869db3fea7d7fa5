"""Messaging keys: each clinic's data keys, wrapped by the platform's master key (environment or
AWS KMS), sealing of secrets with AES-256-GCM, the start-up key check and key rotation."""
