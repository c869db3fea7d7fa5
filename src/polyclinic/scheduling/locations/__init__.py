"""Locations: rooms and sites with opening hours; a service that needs one holds it for one
appointment at a time."""
