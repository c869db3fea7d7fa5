"""Scheduling: when and with whom a patient can be seen, and the appointments themselves.

- `setup`: practitioners, services, weekly hours, date exceptions, the booking policy;
- `locations`: rooms and sites with opening hours;
- `slots`: bookable start times in the clinic's zone;
- `appointments`: booking without double booking, holds, the lifecycle, reminders, views."""
