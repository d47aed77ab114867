"""Stand-in for the postgres image's entrypoint (Debian's PostgreSQL 15).

Honours POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: the user), POSTGRES_INITDB_ARGS
and PGDATA (default /var/lib/postgresql/data). `postgres -c ...` arguments are passed on.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import chown_tree, exec_as, log

BIN = "/usr/lib/postgresql/15/bin"


def as_postgres(argv: list[str], **kw) -> None:
    subprocess.run(
        ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv],
        check=True,
        **kw,
    )


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "postgres":
        args = args[1:]
    elif args and not args[0].startswith("-"):
        os.execvp(args[0], args)  # e.g. `psql` or `sh`: run it as given
    data = os.environ.get("PGDATA", "/var/lib/postgresql/data")
    os.makedirs(data, exist_ok=True)
    os.makedirs("/run/postgresql", exist_ok=True)
    chown_tree("/run/postgresql", "postgres")
    chown_tree(data, "postgres")
    os.chmod(data, 0o700)
    user = os.environ.get("POSTGRES_USER") or "postgres"
    database = os.environ.get("POSTGRES_DB") or user
    password = os.environ.get("POSTGRES_PASSWORD", "")
    trust = os.environ.get("POSTGRES_HOST_AUTH_METHOD") == "trust"
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        if not password and not trust:
            log(
                "Error: Database is uninitialized and superuser password is not specified. "
                "Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)."
            )
            sys.exit(1)
        with tempfile.NamedTemporaryFile("w", delete=False) as pw:
            pw.write(password or "unused")
        os.chmod(pw.name, 0o644)
        extra = shlex.split(os.environ.get("POSTGRES_INITDB_ARGS", ""))
        log(f"initdb for user {user!r}, database {database!r}")
        as_postgres(
            [
                f"{BIN}/initdb",
                "-D",
                data,
                "-U",
                user,
                f"--pwfile={pw.name}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
        )
        os.unlink(pw.name)
        method = "trust" if trust else "scram-sha-256"
        with open(os.path.join(data, "pg_hba.conf"), "a") as hba:
            hba.write(f"host all all all {method}\n")
        if database != "postgres":
            as_postgres(
                [
                    f"{BIN}/pg_ctl",
                    "-D",
                    data,
                    "-o",
                    "-c listen_addresses='' -c jit=off",
                    "-w",
                    "start",
                ],
                stdout=subprocess.DEVNULL,
            )
            # psql's :"name" quotes the identifier: no name can break the statement
            as_postgres(
                [
                    "psql",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-v",
                    f"db={database}",
                    "-U",
                    user,
                    "-d",
                    "postgres",
                    "-q",
                ],
                input='CREATE DATABASE :"db";\n',
                text=True,
            )
            as_postgres(
                [f"{BIN}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], stdout=subprocess.DEVNULL
            )
    exec_as(
        "postgres",
        [
            f"{BIN}/postgres",
            "-D",
            data,
            "-c",
            "listen_addresses=*",
            "-c",
            "jit=off",
            "-c",
            "unix_socket_directories=/run/postgresql",
            *args,
        ],
    )


if __name__ == "__main__":
    main()
