"""The clinic's own profile (name, time zone, contact details) and the onboarding checklist that
takes a new clinic admin through set-up."""
