"""Appointments: booking one or a series with the quota unit in the same transaction, card
holds, the lifecycle steps, history and outbox events, reminders, agenda views, housekeeping."""
