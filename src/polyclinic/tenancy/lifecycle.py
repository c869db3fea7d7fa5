"""Clinic lifecycle hooks: what the domains do when a clinic is created or deleted.

Tenancy creates and removes clinics and knows no domain. Each domain offers its hooks (the
clinic's profile, the first admin, the trial subscription...), and the composition lists them
in one `ClinicLifecycle`, in the order they run. Every stage runs its hooks in that order:

- `check`: before anything is written; a hook refuses a request it cannot serve (an unknown
  plan) with a 4xx, and nothing is left behind;
- `create`: inside the provisioning transaction, after the clinic's tables exist; a failure
  rolls the whole clinic back and records it as `failed`;
- `created`: after that transaction committed (mail, caches); a failure is logged and undoes
  nothing;
- `deleted`: after a clinic was deleted (soft); a failure is logged, the clinic stays deleted.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from polyclinic.db.context import TenantInfo

logger = logging.getLogger("polyclinic.provisioning")


class Stage(enum.StrEnum):
    CHECK = "check"
    CREATE = "create"
    CREATED = "created"
    DELETED = "deleted"


@dataclass(frozen=True)
class NewClinic:
    """What a clinic is created with, as the domains' hooks see it."""

    name: str
    subdomain: str
    timezone: str
    admin_email: str
    plan_code: str | None = None
    # Self-service signup sets the admin's password at once; otherwise the admin is invited.
    admin_password_hash: str | None = field(default=None, repr=False)


@dataclass
class ClinicCreation:
    """One clinic being created: its registry entry, the request, and the provisioning
    transaction twice, on the shared schemas and bound to the clinic's own schema. `notes`
    carries what a `create` hook leaves for its `created` step (an invitation to mail)."""

    clinic: TenantInfo
    request: NewClinic
    shared: AsyncConnection
    schema: AsyncConnection
    notes: dict[str, Any] = field(default_factory=dict)


CheckHook = Callable[[AsyncConnection, NewClinic], Awaitable[None]]
CreateHook = Callable[[ClinicCreation], Awaitable[None]]
DeletedHook = Callable[[TenantInfo], Awaitable[None]]


@dataclass(frozen=True)
class Hook:
    name: str
    stage: Stage
    run: Callable[..., Awaitable[None]]


def on_check(name: str, run: CheckHook) -> Hook:
    return Hook(name, Stage.CHECK, run)


def on_create(name: str, run: CreateHook) -> Hook:
    return Hook(name, Stage.CREATE, run)


def on_created(name: str, run: CreateHook) -> Hook:
    return Hook(name, Stage.CREATED, run)


def on_deleted(name: str, run: DeletedHook) -> Hook:
    return Hook(name, Stage.DELETED, run)


class ClinicLifecycle:
    """The hooks of every domain, in the order they were listed."""

    def __init__(self, hooks: Sequence[Hook] = ()) -> None:
        names = [(hook.stage, hook.name) for hook in hooks]
        if len(set(names)) != len(names):
            raise ValueError("a hook is listed twice for the same stage")
        self.hooks = tuple(hooks)

    def names(self, stage: Stage) -> list[str]:
        return [hook.name for hook in self.hooks if hook.stage == stage]

    def _at(self, stage: Stage) -> list[Hook]:
        return [hook for hook in self.hooks if hook.stage == stage]

    async def check(self, shared: AsyncConnection, request: NewClinic) -> None:
        for hook in self._at(Stage.CHECK):
            await hook.run(shared, request)

    async def create(self, creation: ClinicCreation) -> None:
        for hook in self._at(Stage.CREATE):
            await hook.run(creation)

    async def created(self, creation: ClinicCreation) -> None:
        for hook in self._at(Stage.CREATED):
            await self._after(hook, creation.clinic, creation)

    async def deleted(self, clinic: TenantInfo) -> None:
        for hook in self._at(Stage.DELETED):
            await self._after(hook, clinic, clinic)

    @staticmethod
    async def _after(hook: Hook, clinic: TenantInfo, argument: object) -> None:
        try:
            await hook.run(argument)
        except Exception:
            logger.exception("clinic %s: %s hook %r failed", clinic.id, hook.stage, hook.name)
