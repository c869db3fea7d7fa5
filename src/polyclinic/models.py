"""The model registry: every table of the shared schemas and of a clinic's schema, by
importing each domain's models once.

Alembic (both trees' `env.py`), the DDL render and the app import this module, so nothing low
in the layers has to import the app or a domain to see every table. A new domain adds its
models module here; a test checks that none is left out.
"""

from polyclinic.billing import models as billing_models
from polyclinic.chart.audit import models as audit_models
from polyclinic.chart.patients import models as patient_models
from polyclinic.clinic import models as clinic_models
from polyclinic.db.base import shared_metadata, tenant_metadata
from polyclinic.identity.accounts import models as account_models
from polyclinic.identity.sessions import models as session_models
from polyclinic.identity.staff import models as staff_models
from polyclinic.identity.trail import models as trail_models
from polyclinic.messaging.channels import models as channel_models
from polyclinic.messaging.delivery import models as delivery_models
from polyclinic.messaging.keys import models as key_models
from polyclinic.messaging.templates import models as template_models
from polyclinic.payments import models as payment_models
from polyclinic.platform import models as platform_models
from polyclinic.scheduling.appointments import models as appointment_models
from polyclinic.scheduling.locations import models as location_models
from polyclinic.scheduling.setup import models as setup_models
from polyclinic.tenancy import models as tenancy_models
from polyclinic.worker import outbox

MODEL_MODULES = (
    tenancy_models,
    platform_models,
    billing_models,
    clinic_models,
    account_models,
    session_models,
    staff_models,
    trail_models,
    channel_models,
    delivery_models,
    key_models,
    template_models,
    payment_models,
    setup_models,
    location_models,
    appointment_models,
    audit_models,
    patient_models,
    outbox,
)

__all__ = ["MODEL_MODULES", "shared_metadata", "tenant_metadata"]
