"""Archiving a clinic schema with a pg_dump that can read the server it talks to."""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

from sqlalchemy import make_url

from polyclinic.config import to_libpq_url, to_sqlalchemy_url
from polyclinic.errors import Unavailable


def _major(binary: str) -> int | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(match.group(1)) if match else None


def _candidates() -> list[str]:
    found = [shutil.which("pg_dump")]
    # The embedded server's own binaries, found without importing (and starting) pgserver.
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.append(str(Path(location) / "pginstall" / "bin" / "pg_dump"))
    found += sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)
    return [c for c in found if c]


@cache
def pg_dump_for(server_major: int) -> str:
    """pg_dump refuses servers newer than itself: take one at least as new."""
    for binary in _candidates():
        major = _major(binary)
        if major is not None and major >= server_major:
            return binary
    raise Unavailable(f"No pg_dump for PostgreSQL {server_major} was found; install one")


async def dump_schema(database_url: str, schema: str, server_major: int, target: Path) -> None:
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    binary = await asyncio.to_thread(pg_dump_for, server_major)
    url = make_url(to_sqlalchemy_url(database_url))
    # The password goes through the environment, never on a command line others can read.
    environment = {**os.environ, "PGPASSWORD": url.password or ""}
    dbname = to_libpq_url(url.set(password=None).render_as_string(hide_password=False))
    process = await asyncio.create_subprocess_exec(
        binary,
        "--format=custom",
        f"--schema={schema}",
        f"--file={target}",
        f"--dbname={dbname}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise Unavailable(f"pg_dump failed, nothing was dropped: {stderr.decode()[:300]}")
