"""Delivery: the messages an outbox event causes, sent once through the clinic's providers,
recorded in the delivery log, retried; account mail; the outbox relay jobs."""
