"""Master keys: what wraps each clinic's data key.

`env`: a 256-bit key from MESSAGING_MASTER_KEY, wrapping with AES-256-GCM. `kms`: an AWS KMS
key, through boto3. Either binds each wrapped value to a context (the clinic and key version
of a data key), so a wrapped key copied to another clinic does not unwrap.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from polyclinic.config import Settings, master_key_bytes
from polyclinic.errors import UpstreamFailed
from polyclinic.messaging.errors import MasterKeyMismatch, MasterKeyUnavailable, SecretUnreadable

NONCE_BYTES = 12
ENV_SETTING = "MESSAGING_MASTER_KEY"
PREVIOUS_SETTING = "MESSAGING_PREVIOUS_MASTER_KEY"
KMS_SETTING = "MESSAGING_KMS_KEY_ID"
# KMS answers these when the ciphertext, its context or the key do not match.
_KMS_WRONG_KEY = {"InvalidCiphertextException", "IncorrectKeyException"}


class MasterKey(Protocol):
    key_id: str
    setting: str

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> bytes: ...

    async def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes: ...


def _context_bytes(context: Mapping[str, str]) -> bytes:
    return msgspec.json.encode(dict(sorted(context.items())))


class EnvMasterKey:
    """AES-256-GCM rather than RFC 3394 key wrap: GCM authenticates the context too."""

    def __init__(self, key: bytes, setting: str = ENV_SETTING) -> None:
        self._aead = AESGCM(key)
        self.setting = setting
        # Names the key in rows and messages without revealing it.
        digest = hmac.new(key, b"polyclinic master key id", hashlib.sha256).hexdigest()
        self.key_id = f"env:{digest[:16]}"

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, _context_bytes(context))

    async def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _context_bytes(context)
            )
        except (InvalidTag, ValueError):
            raise SecretUnreadable(
                f"A value wrapped by master key {self.key_id} does not unwrap"
            ) from None


class KmsMasterKey:
    """An AWS KMS key; boto3 is synchronous, so each call runs in a thread."""

    def __init__(self, kms_key_id: str, setting: str = KMS_SETTING) -> None:
        self.kms_key_id = kms_key_id
        self.setting = setting
        self.key_id = f"kms:{kms_key_id}"
        self._client: Any = None
        self._lock = threading.Lock()

    def _kms(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                quiet_botocore()
                self._client = boto3.session.Session().client(
                    "kms", config=Config(retries={"mode": "standard"})
                )
            return self._client

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._kms(), operation)(**params)  # type: ignore[no-any-return]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _KMS_WRONG_KEY:
                raise SecretUnreadable(
                    f"A value wrapped by master key {self.key_id} does not unwrap"
                ) from None
            raise UpstreamFailed(
                f"AWS KMS refused {operation} with {self.kms_key_id} ({code}): "
                f"check {self.setting} and the AWS credentials"
            ) from None
        except BotoCoreError as exc:
            raise UpstreamFailed(
                f"AWS KMS could not be reached ({type(exc).__name__}): check the AWS region, "
                "credentials and endpoint"
            ) from None

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        response = await asyncio.to_thread(
            self._call,
            "encrypt",
            KeyId=self.kms_key_id,
            Plaintext=plaintext,
            EncryptionContext=dict(context),
        )
        return response["CiphertextBlob"]  # type: ignore[no-any-return]

    async def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        response = await asyncio.to_thread(
            self._call,
            "decrypt",
            KeyId=self.kms_key_id,
            CiphertextBlob=wrapped,
            EncryptionContext=dict(context),
        )
        return response["Plaintext"]  # type: ignore[no-any-return]


def quiet_botocore() -> None:
    """botocore's DEBUG lines carry request and response bodies (for KMS, plaintext data
    keys; for SES and SNS, access key ids and messages): they never reach the logs,
    whatever LOG_LEVEL says."""
    logger = logging.getLogger("botocore")
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)


class Keyring:
    """The master key in use and the ones still accepted while a rotation runs."""

    def __init__(self, current: MasterKey | None, previous: tuple[MasterKey, ...] = ()) -> None:
        self._current = current
        self._previous = previous
        self._kms: dict[str, KmsMasterKey] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> MasterKey:
        if self._current is None:
            raise MasterKeyUnavailable(
                "No master key is configured for clinic secrets: set MESSAGING_MASTER_KEY "
                "(base64 of 32 random bytes), or MESSAGING_MASTER_KEY_SOURCE=kms with "
                "MESSAGING_KMS_KEY_ID"
            )
        return self._current

    def for_id(self, key_id: str) -> MasterKey:
        """The master key that wrapped a value, by the id recorded with it.

        A KMS key needs no setting to unwrap what it wrapped (its id is in the record), so a
        move away from a KMS key needs only the new key configured."""
        for key in (self._current, *self._previous):
            if key is not None and key.key_id == key_id:
                return key
        if key_id.startswith("kms:"):
            with self._lock:
                return self._kms.setdefault(key_id, KmsMasterKey(key_id.removeprefix("kms:")))
        if self._current is None:
            raise MasterKeyMismatch(
                f"Clinic secrets are sealed under master key {key_id}, but MESSAGING_MASTER_KEY "
                "is not set: set it to that key"
            )
        raise MasterKeyMismatch(
            f"{self._current.setting} is not master key {key_id}, which wraps the clinics' "
            f"data keys: set it back, or put that key in {PREVIOUS_SETTING} and run "
            "`polyclinic keys rotate-master`"
        )


def keyring_from_settings(settings: Settings) -> Keyring:
    current: MasterKey | None = None
    if settings.messaging_master_key_source == "kms":
        current = KmsMasterKey(settings.messaging_kms_key_id or "")
    elif settings.messaging_master_key:
        current = EnvMasterKey(_key(settings.messaging_master_key), ENV_SETTING)
    previous: tuple[MasterKey, ...] = ()
    if settings.messaging_previous_master_key:
        previous = (EnvMasterKey(_key(settings.messaging_previous_master_key), PREVIOUS_SETTING),)
    return Keyring(current, previous)


@lru_cache(maxsize=4)
def keyring_for(settings: Settings) -> Keyring:
    """One keyring per process and settings (it holds the KMS clients)."""
    return keyring_from_settings(settings)


def _key(value: str) -> bytes:
    key = master_key_bytes(value)
    if key is None:  # load_settings has already refused it; settings built by hand may not
        raise ValueError("a master key must be the base64 of 32 bytes")
    return key


def ensure_dev_master_key(directory: Path) -> None:
    """`polyclinic dev` only: with no master key configured, use a development key kept in
    `directory` (made once), so secrets sealed locally survive a restart."""
    if os.environ.get("MESSAGING_MASTER_KEY_SOURCE") not in (None, "", "env"):
        return
    if os.environ.get("MESSAGING_MASTER_KEY"):
        return
    key_file = directory / "dev-master-key"
    if not key_file.exists():
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(base64.b64encode(os.urandom(32)).decode())
    os.environ["MESSAGING_MASTER_KEY"] = key_file.read_text().strip()
