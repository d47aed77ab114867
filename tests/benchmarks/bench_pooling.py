"""Database pooling: five apps with their own server vs. five databases on one shared server.

On one lab device, with the real servers of the lab (PostgreSQL 15, MariaDB 10.11):

* separate: five containers of the engine's image with its default settings (what five
  apps bundle), one database each;
* shared: one container with the pool's settings (pooling/recipes/<engine>/compose.yaml:
  small buffers, nofile 16384), five databases in it.

Memory is the sum of `docker stats` over the containers, after idle (10 s after start-up)
and after a short load per database, all five at once (PostgreSQL: `pgbench -i -s 1`
then `pgbench -T 15 -c 2`; MariaDB: `mariadb-slap` with auto-generated SQL). Throughput
is transactions (queries) per second per app. Printed, never asserted. Goals (issue 5):
shared memory at most 0.35x of five separate servers, throughput per app at least 0.9x.
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pooling import engines

pytestmark = [pytest.mark.lab, pytest.mark.benchmark]

DEVICE = "lab-server-2"
APPS = 5
PASSWORD = "benchPassw0rd" + "x" * 20


def _sh(lab, cmd: list[str], timeout: float = 300):
    return lab.exec(DEVICE, cmd, timeout=timeout)


def _memory(lab, names: list[str]) -> int:
    out = _sh(lab, ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", *names]).stdout
    return sum(engines.parse_mem_usage(line) or 0 for line in out.splitlines())


def _wait(lab, name: str, ready: list[str]) -> None:
    deadline = time.monotonic() + 180
    while _sh(lab, ["docker", "exec", name, *ready], timeout=30).returncode != 0:
        assert time.monotonic() < deadline, _sh(lab, ["docker", "logs", name]).stderr[-500:]
        time.sleep(1)


def _run(lab, tag: str, engine: str, *, shared: bool) -> tuple[list[str], list[str]]:
    """Start the containers; returns (container names, database per app as (name))."""
    image, _ = engines.image_version(engine)
    names, databases = [], [f"app{i}" for i in range(APPS)]
    count = 1 if shared else APPS
    for i in range(count):
        name = f"bench-pool-{tag}-{engine}-{'shared' if shared else i}"
        if engine == "postgres":
            env = ["-e", f"POSTGRES_PASSWORD={PASSWORD}"]
            args = ["postgres", "-c", "shared_buffers=64MB", "-c", "max_connections=100"]
            args = args if shared else []
        else:
            env = ["-e", f"MARIADB_ROOT_PASSWORD={PASSWORD}"]
            args = [
                "--innodb-buffer-pool-size=64M",
                "--max-connections=100",
                "--performance-schema=OFF",
            ]
            args = args if shared else []
        run = _sh(
            lab,
            ["docker", "run", "-d", "--name", name, "--ulimit", "nofile=16384:16384",
             "--label", "homelab.bench=pooling", *env, image, *args],
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        names.append(name)
    for name in names:  # over TCP: the first-start servers listen on the socket only
        _wait(lab, name, ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"] if engine == "postgres"
              else ["env", f"MYSQL_PWD={PASSWORD}", "mariadb", "-uroot", "-h", "127.0.0.1",
                    "-e", "select 1"])  # fmt: skip
    for i, database in enumerate(databases):
        name = names[0] if shared else names[i]
        if engine == "postgres":
            sql = f'CREATE DATABASE "{database}";'
            cmd = ["docker", "exec", "-i", name, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        else:
            sql = f"CREATE DATABASE `{database}`;"
            cmd = ["docker", "exec", "-i", "-e", f"MYSQL_PWD={PASSWORD}", name, "mariadb", "-uroot"]
        done = lab.exec(DEVICE, cmd, input=sql)
        assert done.returncode == 0, done.stderr
    return names, databases


def _load(lab, engine: str, container: str, database: str) -> float:
    """Transactions (queries) per second for one app's database."""
    if engine == "postgres":
        init = _sh(lab, ["docker", "exec", container, "pgbench", "-U", "postgres", "-i", "-s", "1",
                         "-q", database])  # fmt: skip
        assert init.returncode == 0, init.stderr
        out = _sh(lab, ["docker", "exec", container, "pgbench", "-U", "postgres", "-T", "15",
                        "-c", "2", database])  # fmt: skip
        match = re.search(r"tps = ([\d.]+)", out.stdout)
        assert match, out.stdout + out.stderr
        return float(match.group(1))
    queries = 3000
    out = _sh(
        lab,
        ["docker", "exec", "-e", f"MYSQL_PWD={PASSWORD}", container, "mariadb-slap", "-uroot",
         f"--create-schema={database}", "--auto-generate-sql", "--concurrency=2",
         "--iterations=1", f"--number-of-queries={queries}", "--auto-generate-sql-load-type=mixed"],
    )  # fmt: skip
    match = re.search(r"Average number of seconds to run all queries: ([\d.]+)", out.stdout)
    assert match, out.stdout + out.stderr
    return queries / max(float(match.group(1)), 0.001)


def _measure(lab, tag: str, engine: str, *, shared: bool) -> dict:
    try:
        names, databases = _run(lab, tag, engine, shared=shared)
    except BaseException:
        ids = _sh(lab, ["docker", "ps", "-aq", "--filter", "label=homelab.bench=pooling"]).stdout
        if ids.split():
            _sh(lab, ["docker", "rm", "-f", "-v", *ids.split()])
        raise
    try:
        time.sleep(10)
        idle = _memory(lab, names)
        with ThreadPoolExecutor(APPS) as pool:
            rates = list(
                pool.map(
                    lambda i: _load(lab, engine, names[0] if shared else names[i], databases[i]),
                    range(APPS),
                )
            )
        loaded = _memory(lab, names)
    finally:
        _sh(lab, ["docker", "rm", "-f", "-v", *names])
    return {"idle": idle, "loaded": loaded, "rates": rates}


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_five_apps_separate_vs_shared(lab, report, engine):
    tag = secrets.token_hex(3)
    separate = _measure(lab, tag, engine, shared=False)
    shared = _measure(lab, tag, engine, shared=True)
    mib = 1024 * 1024
    unit = "tps" if engine == "postgres" else "queries/s"
    report(f"{engine} on {DEVICE}, {APPS} apps")
    for label, figures in (("separate", separate), ("shared", shared)):
        report(
            f"  {label:9} memory idle {figures['idle'] / mib:7.1f} MiB, after load "
            f"{figures['loaded'] / mib:7.1f} MiB; {unit} per app "
            + ", ".join(f"{r:.0f}" for r in figures["rates"])
        )
    report(
        f"  shared/separate memory: idle {shared['idle'] / separate['idle']:.2f}x, after load "
        f"{shared['loaded'] / separate['loaded']:.2f}x (goal <= 0.35x)"
    )

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    report(
        f"  shared/separate throughput per app: "
        f"{mean(shared['rates']) / mean(separate['rates']):.2f}x (goal >= 0.9x)"
    )
