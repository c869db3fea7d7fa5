"""Patients under /api/v1/patients: staff search, register, change, merge and invite them; a
patient reads, and changes the contact details of, only their own record."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.trail import AuditTrail
from polyclinic.chart.patients.merge import PatientMerger
from polyclinic.chart.patients.schemas import (
    PRINTABLE,
    MergeRequest,
    NewPatient,
    PatientChanges,
    PatientOut,
    patient_out,
)
from polyclinic.chart.patients.services import Patient, Patients
from polyclinic.identity.accounts.services import Accounts
from polyclinic.identity.permissions.guards import Principal
from polyclinic.web.caller import Caller
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset

WRITE = error_responses(400, 401, 403, 404, 409, 422)


async def provide_patients(
    clinic_db: NamedDependency[AsyncSession],
    accounts: NamedDependency[Accounts],
    audit: NamedDependency[AuditTrail],
) -> Patients:
    return Patients(clinic_db, accounts, audit)


def out(patient: Patient) -> PatientOut:
    return patient_out(patient.user, patient.profile)


class PatientsController(Controller):
    path = "/patients"
    tags = ["clinic: patients"]
    dependencies = {"patients": Provide(provide_patients)}

    @get(
        "/",
        summary="Patients, searchable by name or email, phone and date of birth",
        description=(
            "`q`: every word matches a first or last name or the email. `phone`: the digits "
            "given (3 or more) appear in the number, whatever its spaces and signs. "
            "`dateOfBirth`: exactly. Records merged into another are not listed."
        ),
        opt={"permission": ("patients", "list")},
        responses=error_responses(400, 401, 403),
    )
    async def list_patients(
        self,
        patients: NamedDependency[Patients],
        q: Annotated[str | None, QueryParameter(max_length=200, pattern=PRINTABLE)] = None,
        phone: Annotated[str | None, QueryParameter(max_length=40, pattern=PRINTABLE)] = None,
        date_of_birth: Annotated[datetime.date | None, QueryParameter(query="dateOfBirth")] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> PagedEnvelope[PatientOut]:
        rows, total = await patients.search(
            q=q, phone=phone, date_of_birth=date_of_birth, limit=limit, offset=offset
        )
        return page([out(p) for p in rows], total=total, limit=limit, offset=offset)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Register a patient at the desk (no email or account needed)",
        opt={"permission": ("patients", "register")},
        responses=WRITE,
    )
    async def register_patient(
        self,
        data: JSONBody[NewPatient],
        patients: NamedDependency[Patients],
        principal: NamedDependency[Principal],
    ) -> Envelope[PatientOut]:
        patient = await patients.register(data, principal)
        return ok(out(patient), "Patient registered", HTTP_201_CREATED)

    @get(
        "/{patient_id:uuid}",
        summary="One patient (a patient may read only themself)",
        description=(
            "A record merged into another still answers, inactive, with `mergedIntoId` "
            "naming the record that holds its appointments and chart now."
        ),
        opt={"permission": ("patients", "read")},
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_patient(
        self, patient_id: FromPath[uuid.UUID], patients: NamedDependency[Patients]
    ) -> Envelope[PatientOut]:
        return ok(out(await patients.get(patient_id)))

    @patch(
        "/{patient_id:uuid}",
        summary="Change a patient: only the fields sent",
        description=(
            "Staff change any field; a patient only their own `phone`, `address`, "
            "`emergencyContact` and `preferredLanguage`. The email of a patient who signs in "
            "with it cannot be changed here."
        ),
        opt={"permission": ("patients", "update")},
        responses=WRITE,
    )
    async def update_patient(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[PatientChanges],
        patients: NamedDependency[Patients],
        principal: NamedDependency[Principal],
    ) -> Envelope[PatientOut]:
        return ok(out(await patients.update(patient_id, data, principal)), "Saved")

    @post(
        "/{patient_id:uuid}/merge",
        status_code=HTTP_200_OK,
        summary="Merge a duplicate record of the same person into this one",
        description=(
            "The duplicate's appointments (and chart) move to this record, its blanks are "
            "filled from the duplicate, and the duplicate is kept, inactive and unlisted, "
            "pointing here (`mergedIntoId`). Refused (409) for the record itself, a "
            "non-patient, a record already merged, two records that both have an account, "
            "and a duplicate that has the account (merge the other way round)."
        ),
        opt={"permission": ("patients", "merge")},
        responses=WRITE,
    )
    async def merge_patient(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[MergeRequest],
        clinic_db: NamedDependency[AsyncSession],
        audit: NamedDependency[AuditTrail],
        principal: NamedDependency[Principal],
    ) -> Envelope[PatientOut]:
        merger = PatientMerger(clinic_db, audit)
        merged = await merger.merge(patient_id, data.duplicate_id, principal)
        return ok(out(merged), "Records merged")

    @post(
        "/{patient_id:uuid}/invite",
        status_code=HTTP_200_OK,
        summary="Invite the patient to claim this record as their account",
        description=(
            "Mails the patient's address a link to `/claim-account` on the clinic's site, "
            "whose token `POST /api/v1/auth/claim-account` takes with a new password."
        ),
        opt={"permission": ("patients", "invite")},
        responses=WRITE,
    )
    async def invite_patient(
        self,
        patient_id: FromPath[uuid.UUID],
        patients: NamedDependency[Patients],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[PatientOut]:
        patient = await patients.invite(patient_id, principal, caller)
        return ok(out(patient), "Invitation sent")
