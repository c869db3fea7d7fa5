"""create_app(): the Litestar application, wired from its parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import dramatiq
from litestar import Litestar, Request, Router
from litestar.datastructures import State
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis

import polyclinic.models  # noqa: F401  (every table on its metadata)
from polyclinic.billing.controllers import ClinicBillingController, ClinicSubscriptionController
from polyclinic.billing.features import check_limit
from polyclinic.chart.audit.controllers import (
    AccessLogController,
    AuditController,
    EmergencyAccessController,
)
from polyclinic.chart.audit.dependencies import AUDIT_DEPENDENCIES
from polyclinic.chart.patients.controllers import PatientsController
from polyclinic.cli import PolyclinicCLIPlugin
from polyclinic.clinic.controllers import ClinicController
from polyclinic.clinic.onboarding import OnboardingController
from polyclinic.clinic.origins import ProfileOrigins
from polyclinic.config import Settings, get_settings
from polyclinic.db.engine import create_app_engine
from polyclinic.identity.accounts.controllers import AccountsController
from polyclinic.identity.dependencies import IDENTITY_DEPENDENCIES
from polyclinic.identity.mfa.controllers import MfaController
from polyclinic.identity.permissions.guards import authorize
from polyclinic.identity.sessions.controllers import SessionsController
from polyclinic.identity.staff.controllers import (
    InvitationAcceptanceController,
    InvitationsController,
    StaffController,
)
from polyclinic.identity.trail.controllers import AuthEventsController
from polyclinic.logs import configure_logging
from polyclinic.messaging.channels.controllers import MessagingChannelsController
from polyclinic.messaging.delivery.account_mail import AccountMailTokens
from polyclinic.messaging.delivery.controllers import DeliveriesController
from polyclinic.messaging.delivery.mailer import ClinicMailer
from polyclinic.messaging.keys.check import verify_master_key
from polyclinic.messaging.keys.masters import keyring_for
from polyclinic.messaging.preferences.controllers import PreferencesController
from polyclinic.messaging.templates.controllers import TemplatesController
from polyclinic.payments.controllers import PaymentsController
from polyclinic.platform.controllers import (
    ClinicDomainsController,
    ClinicsController,
    PlatformAuthController,
)
from polyclinic.platform.metrics import MetricsController
from polyclinic.platform.plans import PlansController
from polyclinic.platform.signup import SignupController
from polyclinic.platform.stripe_webhooks import StripeWebhookController
from polyclinic.scheduling.appointments.controllers import AppointmentsController
from polyclinic.scheduling.locations.controllers import LocationsController
from polyclinic.scheduling.setup.controllers import (
    BookingPolicyController,
    PractitionersController,
    ServicesController,
)
from polyclinic.scheduling.slots.controllers import SlotsController
from polyclinic.tenancy.middleware import TenancyMiddleware
from polyclinic.tenancy.resolver import TenantResolver, TrustedProxies
from polyclinic.web.caller import client_ip
from polyclinic.web.dependencies import DEPENDENCIES
from polyclinic.web.errors import EXCEPTION_HANDLERS
from polyclinic.web.fairness import FairnessLimits, FairnessMiddleware, FairShareResponses
from polyclinic.web.health import HealthController
from polyclinic.web.limits import InputLimits
from polyclinic.web.request_id import RequestIdMiddleware, add_request_id_header
from polyclinic.web.security import CorsMiddleware, security_headers
from polyclinic.web.state import Runtime
from polyclinic.web.tokens import TokenSigner
from polyclinic.worker.broker import InProcessWorkers, create_broker
from polyclinic.worker.mail import MailQueue
from polyclinic.worker.scheduler import Scheduler

__all__ = ["create_app"]


def build_runtime(settings: Settings) -> Runtime:
    engine = create_app_engine(settings)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    return Runtime(
        settings=settings,
        engine=engine,
        resolver=TenantResolver(engine, settings.tenant_cache_ttl, redis, settings.redis_namespace),
        signer=TokenSigner(settings),
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
        mail=MailQueue(
            ClinicMailer(engine, settings), sealer=AccountMailTokens(settings), engine=engine
        ),
        plan_limits=check_limit,
        redis=redis,
        clinic_origins=ProfileOrigins(engine, settings.tenant_cache_ttl),
    )


def clinic_api() -> Router:
    """Every route on a clinic's host: each passes the permission matrix or is refused."""
    return Router(
        path="/api/v1",
        guards=[authorize],
        dependencies={**IDENTITY_DEPENDENCIES, **AUDIT_DEPENDENCIES},
        route_handlers=[
            ClinicController,
            AccountsController,
            SessionsController,
            MfaController,
            InvitationAcceptanceController,
            PreferencesController,
            AuthEventsController,
            InvitationsController,
            StaffController,
            PatientsController,
            ClinicBillingController,
            ClinicSubscriptionController,
            PractitionersController,
            ServicesController,
            LocationsController,
            MessagingChannelsController,
            TemplatesController,
            DeliveriesController,
            SlotsController,
            AppointmentsController,
            PaymentsController,
            BookingPolicyController,
            OnboardingController,
            AuditController,
            AccessLogController,
            EmergencyAccessController,
        ],
    )


def auth_rate_limit(settings: Settings) -> RateLimitConfig:
    """Requests to /api/v1/auth/* (per clinic and client address) and to the public signup
    (per client address), per minute."""

    def identifier(request: Request) -> str:
        tenant = request.scope["state"].get("tenant")
        return f"{tenant.id if tenant else '-'}|{client_ip(request)}"

    def is_auth_route(request: Request) -> bool:
        path = request.url.path
        return path.startswith("/api/v1/auth/") or path == "/platform/v1/signup"

    return RateLimitConfig(
        rate_limit=("minute", settings.auth_rate_limit_per_minute),
        identifier_for_request=identifier,
        check_throttle_handler=is_auth_route,
        store="auth_rate_limit",
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    runtime = build_runtime(settings)

    listener: list[asyncio.Task[None]] = []  # the cache listener and in-process scheduler
    workers: list[InProcessWorkers] = []

    async def start_runtime() -> None:
        # A wrong master key stops the start, not a clinic's first send.
        await verify_master_key(runtime.engine, keyring_for(settings))
        if settings.dev_mail_to_log:
            logging.getLogger("polyclinic").warning(
                "DEV_MAIL_TO_LOG is set: email without a provider is written to this log, "
                "one-time codes included; for local work only"
            )
        listener.append(asyncio.create_task(runtime.resolver.listen()))
        if settings.redis_url or settings.in_process_workers:
            broker = create_broker(settings)
            dramatiq.set_broker(broker)
            runtime.broker = broker
            if settings.in_process_workers:
                workers.append(InProcessWorkers(broker))
                workers[0].start()
                scheduler = Scheduler(broker, runtime.redis, settings.redis_namespace)
                listener.append(asyncio.create_task(scheduler.run()))

    async def close_runtime() -> None:
        for task in listener:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for worker in workers:
            await asyncio.to_thread(worker.stop)
        await runtime.mail.drain()
        if runtime.redis is not None:
            await runtime.redis.aclose()
        await runtime.engine.dispose()

    return Litestar(
        route_handlers=[
            HealthController,
            PlatformAuthController,
            ClinicsController,
            ClinicDomainsController,
            PlansController,
            SignupController,
            MetricsController,
            StripeWebhookController,
            clinic_api(),
        ],
        dependencies=DEPENDENCIES,
        plugins=[PolyclinicCLIPlugin(), InputLimits(), FairShareResponses()],
        request_max_body_size=settings.max_request_body_bytes,
        stores={
            "auth_rate_limit": (
                RedisStore(runtime.redis, namespace=f"{settings.redis_namespace}:rate")
                if runtime.redis is not None
                else MemoryStore()
            )
        },
        middleware=[
            RequestIdMiddleware(),
            TenancyMiddleware(runtime.resolver, settings.platform_hosts, runtime.trusted_proxies),
            CorsMiddleware(runtime.clinic_origins),
            FairnessMiddleware(
                FairnessLimits.of(settings), runtime.redis, settings.redis_namespace
            ),
            auth_rate_limit(settings).middleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[
            add_request_id_header,
            security_headers(settings.hsts_max_age, runtime.trusted_proxies),
        ],
        on_startup=[start_runtime],
        on_shutdown=[close_runtime],
        state=State({"runtime": runtime}),
        openapi_config=OpenAPIConfig(
            title="Polyclinic",
            version="1.0.0",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
    )
