"""Scheduling set-up: practitioners, the services they offer, their weekly hours and date
exceptions, and the clinic's booking policy."""
