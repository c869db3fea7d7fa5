"""Slots: the bookable start times of a practitioner for a service, from working hours,
exceptions, bookings, buffers and the booking policy, in the clinic's time zone."""
