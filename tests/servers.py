"""Throw-away real PostgreSQL and Redis servers for the scale-up tests.

* ``postgres_server()`` / fixture ``postgres``: a fresh cluster (initdb) in a temp directory,
  listening on 127.0.0.1 at a free port with its unix socket in the temp directory, with a
  role that logs in by password over TCP and a database it owns. As root the cluster runs as
  the ``postgres`` OS user (PostgreSQL refuses to run as root).
* ``redis_server()`` / fixture ``redis``: ``redis-server`` on 127.0.0.1 at a free port,
  no persistence.

Both are stopped (process killed if it does not stop, temp directory removed) afterwards.
When the binaries are missing the fixtures skip with the reason; mark the tests that use
them ``lab`` so that with CI=true the skip is a failure (tests/conftest.py).
Install: ``apt-get install -y postgresql redis-server`` (.ci/run does).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_VERSION_PREFERRED = "15"
START_TIMEOUT_SECONDS = 30
CLIENT_NAME = "homelab-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, sig: int, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# PostgreSQL ---------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """Debian's /usr/lib/postgresql/<version>/bin (15 preferred), or None."""
    preferred = Path(f"/usr/lib/postgresql/{PG_VERSION_PREFERRED}/bin")
    candidates = [
        preferred,
        *sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), reverse=True),
    ]
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def postgres_missing_reason() -> str | None:
    if postgres_bin_dir() is None:
        return (
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
            "apt-get install -y postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no 'postgres' OS user to run PostgreSQL as"
    return None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    socket_dir: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, **kwargs):
        """A psycopg connection as the application role, over TCP with the password."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.dbname,
            connect_timeout=5,
            **kwargs,
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def postgres_server(
    user: str = "homelab", password: str = "s3cret-pw", dbname: str = "homelab"
) -> Iterator[PostgresServer]:
    """Start a throw-away PostgreSQL; yield how to reach it; stop it and delete everything."""
    import psycopg
    from psycopg import sql

    reason = postgres_missing_reason()
    if reason:
        raise RuntimeError(reason)
    bin_dir = postgres_bin_dir()
    as_root = os.geteuid() == 0
    run_as = {"user": "postgres", "group": "postgres", "extra_groups": []} if as_root else {}

    root = Path(tempfile.mkdtemp(prefix="homelab-pg-"))
    data_dir, socket_dir, log_path = root / "data", root / "socket", root / "postgres.log"
    socket_dir.mkdir()
    if as_root:
        # mkdtemp makes a 0700 root directory the postgres user could not even enter.
        entry = pwd.getpwnam("postgres")
        for path in (root, socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    process = None
    log = None
    try:
        init = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **run_as,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        port = free_port()
        log = open(log_path, "w")
        if as_root:
            os.chown(log_path, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
        process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={port}",
                "-c",
                f"unix_socket_directories={socket_dir}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **run_as,
        )
        server = PostgresServer(
            host="127.0.0.1",
            port=port,
            user=user,
            password=password,
            dbname=dbname,
            socket_dir=socket_dir,
            process=process,
            log_path=log_path,
        )
        # Set up the role and database as the superuser over the unix socket (trust).
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited with {process.returncode}:\n{server.log()}")
            try:
                admin = psycopg.connect(
                    host=str(socket_dir),
                    port=port,
                    user="postgres",
                    dbname="postgres",
                    autocommit=True,
                    connect_timeout=2,
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"postgres did not accept connections:\n{server.log()}"
                    ) from None
                time.sleep(0.2)
        with admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)
                )
            )
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(user)
                )
            )
        yield server
    finally:
        if process is not None:
            # SIGINT is PostgreSQL's "fast shutdown": ends sessions, checkpoints, exits.
            _stop(process, signal.SIGINT)
        if log is not None:
            log.close()
        shutil.rmtree(root, ignore_errors=True)


# Redis --------------------------------------------------------------------------------------


def redis_missing_reason() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed; apt-get install -y redis-server"
    return None


@dataclass
class RedisServer:
    host: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self):
        import redis

        # Named, so a test can tell its own connections from the application's.
        return redis.Redis(
            host=self.host, port=self.port, db=0, socket_timeout=5, client_name=CLIENT_NAME
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start a throw-away redis-server (no persistence); yield it; stop it; delete its dir."""
    import redis

    reason = redis_missing_reason()
    if reason:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="homelab-redis-"))
    log_path = root / "redis.log"
    port = free_port()
    log = open(log_path, "w")
    process = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(root),
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = RedisServer(host="127.0.0.1", port=port, process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {process.returncode}:\n{server.log()}"
                )
            try:
                if server.client().ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        _stop(process, signal.SIGTERM)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


# pytest fixtures ----------------------------------------------------------------------------


def _skip_unless_available(reason: str | None) -> None:
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    _skip_unless_available(postgres_missing_reason())
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    _skip_unless_available(redis_missing_reason())
    with redis_server() as server:
        yield server
