"""The database foundation: engines, sessions bound to one clinic's schema and role, the
clinic context of a request or job, the two metadata objects and base models, throwaway
databases for tests and the embedded PostgreSQL of `dev`."""
