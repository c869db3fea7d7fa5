"""Patients managed by the clinic's staff.

A patient is a clinic user with the role `patient` (appointments and the chart refer to
`users.id`); a record made at the desk has no email or password until the patient claims it.
`patient_profiles` holds what only patients have: sex, address, emergency contact, insurance,
and, for a duplicate merged into another record, the survivor it points at. `merge` moves a
duplicate's rows to the survivor.
"""
