"""The audit trail of protected health information, and emergency access to a chart.

Every read and write of a patient's data is an entry (actor, role, patient, what, when,
request id, address), written in the request's own transaction. Entries are append-only for
the clinic's role and chained by hash per clinic (`chain.py`); `polyclinic audit verify`
walks each clinic's chain. Staff whose role does not open a chart may open one in an
emergency, with a reason, for a limited time (`access.py`); that is flagged in the trail.
"""
