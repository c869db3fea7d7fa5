"""The embedded PostgreSQL of `polyclinic dev` and of tests run without DATABASE_URL (the
`pgserver` package): started on first use, reused afterwards."""

from __future__ import annotations

from pathlib import Path


def embedded_postgres_url(data_dir: Path, database: str) -> str:
    """Start (or reuse) a PostgreSQL server in `data_dir` and return a URL for `database`."""
    import pgserver

    server = pgserver.get_server(data_dir.resolve(), cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server.get_uri(database)
