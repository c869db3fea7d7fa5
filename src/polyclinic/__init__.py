"""Polyclinic: a multi-tenant backend for outpatient clinics, one PostgreSQL schema per clinic.

The README's code map names each package and what it owns."""
