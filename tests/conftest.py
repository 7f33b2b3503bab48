"""Shared fixtures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from jointnas.data import Dataset, load_dataset


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Trace/run tiny models on one thread: with the default threads, tracing slowed ~10x when
    the 2-core machine was shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def nan_digits(digits: Dataset) -> Dataset:
    """The digits data with every training pixel NaN: any training on it must diverge."""
    x = torch.full_like(digits.x_train, float("nan"))
    return Dataset(
        name="nan",
        x_train=x,
        y_train=digits.y_train,
        x_val=digits.x_val,
        y_val=digits.y_val,
        num_classes=10,
    )


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """``jointnas ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "jointnas.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _pg_bindir() -> Path | None:
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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback for this test session, stopped afterwards.

    Skipped where PostgreSQL is not installed, except when ``JOINTNAS_REQUIRE_POSTGRES`` is set
    (CI sets it: there the PostgreSQL tests must really run).
    """
    bindir = _pg_bindir()
    try:
        import psycopg
    except ImportError:
        psycopg = None
    if bindir is None or psycopg is None:
        missing = "server programs (pg_ctl)" if bindir is None else "psycopg"
        if os.environ.get("JOINTNAS_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL {missing} not found but JOINTNAS_REQUIRE_POSTGRES is set")
        pytest.skip(f"PostgreSQL {missing} not installed")
    # not under pytest's tmp dirs: those are private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="jointnas-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: use the package's user
        import pwd

        pg = pwd.getpwnam("postgres")
        os.chown(root, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off -c max_connections=200"
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-l", str(root / "log"), "-w", "-o", options, "start"],
        check=True,
        capture_output=True,
    )
    try:
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE jointnas_test")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/jointnas_test"
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
