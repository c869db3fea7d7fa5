"""What SES and SNS share: the clinic's own AWS access key, and boto3 called in a thread.

The platform's AWS credentials are never lent to a clinic: each clinic names its own key.
Endpoints follow boto3's usual configuration (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SESV2`,
`AWS_ENDPOINT_URL_SNS`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from polyclinic.messaging.channels.providers.base import refused, unanswered, unreachable
from polyclinic.messaging.keys.masters import quiet_botocore


class AwsSecrets(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    access_key_id: Annotated[
        str, msgspec.Meta(pattern=r"^[A-Z0-9]{16,128}$", description="an AWS access key id")
    ]
    secret_access_key: Annotated[str, msgspec.Meta(min_length=16, max_length=128)]


class AwsClient:
    """A boto3 client of one service, region and access key, made on first use."""

    def __init__(self, service: str, provider: str, region: str, secrets: AwsSecrets) -> None:
        self.service = service
        self.provider = provider
        self.region = region
        self._secrets = secrets
        self._client: Any = None

    def _boto(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            quiet_botocore()
            session = boto3.session.Session(
                aws_access_key_id=self._secrets.access_key_id,
                aws_secret_access_key=self._secrets.secret_access_key,
                region_name=self.region,
            )
            self._client = session.client(
                self.service,
                config=Config(
                    # No retry inside one send: a repeat could deliver the message twice.
                    retries={"mode": "standard", "max_attempts": 1},
                    connect_timeout=10,
                    read_timeout=30,
                ),
            )
        return self._client

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        secrets = [self._secrets.access_key_id, self._secrets.secret_access_key]
        try:
            return getattr(self._boto(), operation)(**params)  # type: ignore[no-any-return]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
            raise refused(self.provider, reason, secrets) from None
        except ReadTimeoutError as exc:
            raise unanswered(self.provider, exc) from None
        except BotoCoreError as exc:
            raise unreachable(self.provider, exc) from None

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self._call, operation, params)
