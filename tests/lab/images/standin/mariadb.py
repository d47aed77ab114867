"""Stand-in for the mariadb image's entrypoint (Debian's MariaDB 10.11).

Honours MARIADB_ROOT_PASSWORD / MYSQL_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD /
MYSQL_RANDOM_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_DATABASE /
MYSQL_DATABASE, MARIADB_USER / MYSQL_USER and MARIADB_PASSWORD / MYSQL_PASSWORD.
Arguments starting with '-' are mariadbd options (e.g. --transaction-isolation=...).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import chown_tree, first, log

DATADIR = "/var/lib/mysql"
SOCKET = "/run/mysqld/mysqld.sock"


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ident(value: str) -> str:
    return "`" + value.replace("`", "``") + "`"


def initialise() -> None:
    root_pw = first("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD")
    if first("MARIADB_RANDOM_ROOT_PASSWORD", "MYSQL_RANDOM_ROOT_PASSWORD"):
        root_pw = secrets.token_urlsafe(24)
        log("generated a random root password")
    elif not root_pw and not first(
        "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "MYSQL_ALLOW_EMPTY_PASSWORD"
    ):
        log(
            "Database is uninitialized and password option is not specified: set one of "
            "MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD"
        )
        sys.exit(1)
    log("mariadb-install-db")
    subprocess.run(
        [
            "mariadb-install-db",
            "--user=mysql",
            f"--datadir={DATADIR}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [
            "mariadbd",
            "--user=mysql",
            f"--datadir={DATADIR}",
            "--skip-networking",
            f"--socket={SOCKET}",
        ]
    )
    for _ in range(120):
        if (
            subprocess.run(
                ["mariadb-admin", f"--socket={SOCKET}", "ping", "--silent"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            break
        time.sleep(0.5)
    sql = [
        "DELETE FROM mysql.global_priv WHERE User='' OR Host NOT IN ('localhost');",
        f"CREATE USER 'root'@'%' IDENTIFIED BY {literal(root_pw)};",
        "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;",
        f"ALTER USER 'root'@'localhost' IDENTIFIED BY {literal(root_pw)};",
    ]
    database = first("MARIADB_DATABASE", "MYSQL_DATABASE")
    user = first("MARIADB_USER", "MYSQL_USER")
    password = first("MARIADB_PASSWORD", "MYSQL_PASSWORD")
    if database:
        sql.append(f"CREATE DATABASE IF NOT EXISTS {ident(database)};")
    if user:
        sql.append(f"CREATE USER {literal(user)}@'%' IDENTIFIED BY {literal(password)};")
        if database:
            sql.append(f"GRANT ALL ON {ident(database)}.* TO {literal(user)}@'%';")
    sql.append("FLUSH PRIVILEGES;")
    subprocess.run(
        ["mariadb", f"--socket={SOCKET}", "-uroot"], input="\n".join(sql), text=True, check=True
    )
    subprocess.run(
        ["mariadb-admin", f"--socket={SOCKET}", "-uroot", f"-p{root_pw}", "shutdown"], check=True
    )
    server.wait()


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = ["mariadbd", *args]
    if args[0] not in ("mariadbd", "mysqld"):
        os.execvp(args[0], args)
    os.makedirs("/run/mysqld", exist_ok=True)
    os.makedirs(DATADIR, exist_ok=True)
    chown_tree("/run/mysqld", "mysql")
    chown_tree(DATADIR, "mysql")
    if not os.path.isdir(os.path.join(DATADIR, "mysql")):
        initialise()
    os.execvp(
        "mariadbd",
        [
            "mariadbd",
            "--user=mysql",
            f"--datadir={DATADIR}",
            "--bind-address=0.0.0.0",
            f"--socket={SOCKET}",
            *args[1:],
        ],
    )


if __name__ == "__main__":
    main()
