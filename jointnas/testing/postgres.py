"""A throwaway PostgreSQL server for tests and benchmarks (like ``optuna.testing``).

``postgres_server()`` starts a private cluster on loopback (a free port, trust auth, no fsync)
in a temporary directory and removes it afterwards; it needs PostgreSQL's server programs
(Debian: ``apt-get install postgresql``) and psycopg 3. As root it runs the server as the
``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The server programs or the psycopg driver are not installed."""


def pg_bindir() -> Path | None:
    """Directory of PostgreSQL's server programs (Debian keeps them off PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server(database: str = "jointnas_test") -> Iterator[str]:
    """Yield a SQLAlchemy URL (``postgresql+psycopg://...``) to a fresh, empty ``database``."""
    bindir = pg_bindir()
    try:
        import psycopg
    except ImportError:
        raise PostgresUnavailable(
            "psycopg is not installed (pip install 'psycopg[binary]')"
        ) from None
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server programs (pg_ctl) are not installed")
    # not under a private (0700) temp dir such as pytest's: the server may run as postgres
    root = Path(tempfile.mkdtemp(prefix="jointnas-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        pg = pwd.getpwnam("postgres")
        os.chown(root, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]
    options = f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off -c max_connections=200"
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*pg_ctl, "-l", str(root / "log"), "-w", "-o", options, "start"],
            check=True,
            capture_output=True,
        )
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
