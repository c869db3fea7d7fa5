"""Clinic staff: invitations (made, accepted, revoked), role changes and deactivation, within
the plan's staff seats."""
