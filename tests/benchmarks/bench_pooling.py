"""Database pooling: five apps with their own server vs. five databases on one shared server.

On one lab device, with the real servers of the lab (PostgreSQL 15, MariaDB 10.11):

* separate: five containers of the engine's image as the product measures its "without
  pooling" baseline (`engines.baseline_run`: the image's default settings, what five apps
  bundle), each with a data volume;
* shared: the product's shared instance itself: `engines.shared_compose()` rendered from
  pooling/recipes/<engine>/compose.yaml (its command, settings and ulimits, a named data
  volume) and started with `docker compose up`, five databases in it.

Both setups run side by side on the device; the steps are the same for both:

1. Start, wait until the server answers over TCP (the product's readiness check); the
   shared server gets five databases and roles from the product's own SQL
   (`engines.provision_sql`), each separate PostgreSQL its app's database the way a
   bundled one does (POSTGRES_DB, created by the image's entrypoint at first start; a
   separate MariaDB: CREATE DATABASE). Memory "idle" is read 10 s later.
2. Load, all five apps at once, one client process per app inside its server's container:
   PostgreSQL `pgbench -i -s 1` once, then ROUNDS rounds of `pgbench -c 2 -t N` (a fixed
   number of transactions, so both sides do the same work); MariaDB ROUNDS rounds of
   `mariadb-slap` with a fixed number of auto-generated queries. The sides take turns
   (separate, shared; shared, separate; ...) so that a busy moment of the shared machine
   hits both alike. Throughput per app in a round is the five apps' work divided by the
   time until the last one finished (with equal work per app: the slowest app's rate); its
   median over the rounds is compared. The mean of the apps' own rates is printed too, but
   it flatters uneven scheduling: five separate servers do not finish together, and an app
   that finishes early shows a high rate while the others wait. CPU time (cgroup cpuacct)
   per transaction is the least noisy figure: the same work on both sides.
3. Memory "after load" right after each side's last round.

Memory is what `docker stats` shows (cgroup v1: usage minus total_inactive_file), summed
over the containers; a breakdown from the containers' memory.stat (anonymous memory, shared
memory, i.e. PostgreSQL's shared buffers, active page cache, kernel memory) and the
processes' anonymous memory (smaps_rollup) says where it goes; for PostgreSQL, the size of
the apps' data after load (their tables and indexes, which the load touches entirely) says
how much of the goal the data alone takes. Printed, never asserted.
Goals (issue 5): shared memory at most 0.35x of five separate servers, throughput per app
at least 0.9x.
"""

from __future__ import annotations

import re
import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from devices.compose import dump_compose
from pooling import engines

pytestmark = [pytest.mark.lab, pytest.mark.benchmark]

DEVICE = "lab-server-2"
APPS = 5
ROUNDS = 8  # per side, in turns: many short rounds, as the machine's load comes and goes
PG_CLIENTS = 2
PG_TRANSACTIONS = 500  # per client and round: about 3-8 s per round on the lab
MY_QUERIES = 2000  # per app and round
PASSWORD = "benchPassw0rd" + "x" * 20  # letters and digits, as engines.check_password wants
LABEL = "homelab.bench=pooling"
MIB = 1024 * 1024


def _sh(lab, cmd: list[str], timeout: float = 300, input: str | None = None):
    return lab.exec(DEVICE, cmd, timeout=timeout, input=input)


def _sql(lab, engine: str, container: str, sql: str) -> str:
    done = _sh(
        lab,
        engines.sql_command(engine, container),
        input=engines.sql_stdin(engine, sql, PASSWORD).decode(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# ------------------------------------------------------------------------- memory
def _memory(lab, containers: list[str]) -> int:
    out = _sh(lab, ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", *containers])
    return sum(engines.parse_mem_usage(line) or 0 for line in out.stdout.splitlines())


_STAT_KEYS = ("total_rss", "total_shmem", "total_active_file", "total_inactive_file")


def _breakdown(lab, containers: list[str]) -> dict[str, int]:
    """Summed over the containers: usage, kernel memory and memory.stat fields of their
    cgroups, and the anonymous memory of their processes (smaps_rollup)."""
    ids = _sh(lab, ["docker", "inspect", "-f", "{{.Id}}", *containers]).stdout.split()
    script = (
        'for id in "$@"; do d=/sys/fs/cgroup/memory/docker/$id; '
        'echo "usage $(cat $d/memory.usage_in_bytes)"; echo "kmem $(cat $d/memory.kmem.usage_in_bytes)"; '
        "cat $d/memory.stat; "
        "for p in $(cat $d/cgroup.procs); do "
        "awk '/^Anonymous:/ {s += $2} END {print \"private\", s * 1024}' "
        "/proc/$p/smaps_rollup 2>/dev/null; done; done"
    )
    out = _sh(lab, ["sh", "-c", script, "sh", *ids]).stdout
    totals = dict.fromkeys(("usage", "kmem", *_STAT_KEYS, "private", "processes"), 0)
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key in totals and value.strip().isdigit():
            totals[key] += int(value)
            totals["processes"] += key == "private"
    return totals


def _cpu_seconds(lab, containers: list[str]) -> float:
    """CPU time used so far by the containers (servers and the benchmark's clients)."""
    ids = _sh(lab, ["docker", "inspect", "-f", "{{.Id}}", *containers]).stdout.split()
    script = 'for id in "$@"; do cat /sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage; done'
    out = _sh(lab, ["sh", "-c", script, "sh", *ids]).stdout.split()
    return sum(int(n) for n in out) / 1e9


def _describe(figures: dict[str, int]) -> str:
    return (
        f"anon {figures['total_rss'] / MIB:.1f} + shmem {figures['total_shmem'] / MIB:.1f} + "
        f"active file {figures['total_active_file'] / MIB:.1f} + kernel {figures['kmem'] / MIB:.1f} "
        f"MiB (inactive file "
        f"{figures['total_inactive_file'] / MIB:.1f}, not counted); anonymous memory of "
        f"{figures['processes']} processes {figures['private'] / MIB:.1f} MiB (pages shared "
        "after fork counted in each)"
    )


# ------------------------------------------------------------------------ servers
def _wait(lab, engine: str, container: str) -> None:
    """Until the final server answers over TCP (the product's own readiness check)."""
    deadline = time.monotonic() + 180
    stdin = engines.sql_stdin(engine, "", PASSWORD).decode()
    while _sh(lab, engines.ready_command(engine, container), 30, stdin).returncode != 0:
        assert time.monotonic() < deadline, _sh(lab, ["docker", "logs", container]).stderr[-800:]
        time.sleep(1)


def _start_separate(lab, tag: str, engine: str, databases: list[str]) -> list[str]:
    """Five standalone servers as the product measures its "without pooling" baseline
    (`engines.baseline_run`: the image's defaults, the admin password; MariaDB with the
    nofile limit a bundled one needs), each with a data volume as an app's would have.
    PostgreSQL: each gets its app's database as a bundled one does (POSTGRES_DB: the
    image's entrypoint creates it at first start, before the final server starts)."""
    options, _ = engines.baseline_run(engine, PASSWORD)
    image, _ = engines.image_version(engine)
    names = []
    for i in range(APPS):
        name = f"bench-pool-{tag}-{engine}-{i}"
        bundled = ["-e", f"POSTGRES_DB={databases[i]}"] if engine == "postgres" else []
        run = _sh(
            lab,
            ["docker", "run", "-d", "--name", name, "--label", LABEL, *options, *bundled,
             "--volume", engines.ENGINES[engine].data_path, image],
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        names.append(name)
    return names


def _start_shared(lab, tag: str, engine: str, command: list[str] | None = None) -> list[str]:
    """The product's shared instance: its rendered compose file, `docker compose up`.
    `command` replaces the recipe's (only to try candidate settings by hand)."""
    project = f"bench-pool-{tag}-{engine}"
    data = engines.shared_compose(engine, project=project, admin_password=PASSWORD, network=project)
    service = data["services"][engines.ENGINES[engine].service]
    if command is not None:
        service["command"] = command
    service["labels"]["homelab.bench"] = "pooling"
    folder = f"/tmp/{project}"
    steps = [
        (["docker", "network", "create", "--label", LABEL, project], None),
        (["mkdir", "-p", folder], None),
        (["sh", "-c", 'cat > "$1"', "sh", f"{folder}/compose.yaml"], dump_compose(data)),
        (["docker", "compose", "-p", project, "-f", f"{folder}/compose.yaml", "up", "-d"], None),
    ]
    for cmd, stdin in steps:
        done = _sh(lab, cmd, input=stdin)
        assert done.returncode == 0, done.stderr
    return [f"{project}-{engines.ENGINES[engine].service}-1"]


def _remove(lab, tag: str, engine: str) -> None:
    """Everything this run started: containers named bench-pool-<tag>-<engine>-*, the
    compose project's volume and network, the compose file."""
    project = f"bench-pool-{tag}-{engine}"
    ids = _sh(lab, ["docker", "ps", "-aq", "--filter", f"name={project}-"]).stdout.split()
    if ids:
        _sh(lab, ["docker", "rm", "-f", "-v", *ids])
    vols = _sh(lab, ["docker", "volume", "ls", "-q", "--filter",
                     f"label=com.docker.compose.project={project}"]).stdout.split()  # fmt: skip
    if vols:
        _sh(lab, ["docker", "volume", "rm", *vols])
    _sh(lab, ["docker", "network", "rm", project])
    _sh(lab, ["rm", "-rf", f"/tmp/{project}"])


# --------------------------------------------------------------------------- load
def _pg_round(lab, container: str, database: str) -> float:
    out = _sh(
        lab,
        ["docker", "exec", container, "pgbench", "-U", "postgres", "-n", "-c", str(PG_CLIENTS),
         "-t", str(PG_TRANSACTIONS), database],
    )  # fmt: skip
    match = re.search(r"tps = ([\d.]+)", out.stdout)
    assert match, out.stdout + out.stderr
    return float(match.group(1))


def _my_round(lab, container: str, database: str) -> float:
    out = _sh(
        lab,
        ["docker", "exec", "-e", f"MYSQL_PWD={PASSWORD}", container, "mariadb-slap", "-uroot",
         f"--create-schema={database}", "--auto-generate-sql", "--concurrency=2",
         "--iterations=1", f"--number-of-queries={MY_QUERIES}",
         "--auto-generate-sql-load-type=mixed"],
    )  # fmt: skip
    match = re.search(r"Average number of seconds to run all queries: ([\d.]+)", out.stdout)
    assert match, out.stdout + out.stderr
    return MY_QUERIES / max(float(match.group(1)), 0.001)


def _init(lab, engine: str, containers: list[str], databases: list[str]) -> None:
    if engine != "postgres":
        return  # mariadb-slap makes its own tables in every round
    where = [(containers[i % len(containers)], databases[i]) for i in range(APPS)]
    init = ["pgbench", "-U", "postgres", "-i", "-s", "1", "-q"]
    with ThreadPoolExecutor(APPS) as pool:
        for done in pool.map(lambda cd: _sh(lab, ["docker", "exec", cd[0], *init, cd[1]]), where):
            assert done.returncode == 0, done.stderr


def _pg_sizes(lab, containers: list[str], databases: list[str]) -> dict[str, int]:
    """The apps' data after load, summed over the databases: each database's size on disk
    (pg_database_size: its catalogs too) and its own tables and indexes (the pages the
    load touches)."""
    query = (
        "SELECT pg_database_size(current_database()) || ' ' || coalesce(sum("
        "pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm');\n"
    )
    sizes = {"database": 0, "tables": 0}
    for i, database in enumerate(databases):
        container = containers[i % len(containers)]
        done = _sh(
            lab,
            ["docker", "exec", "-i", container, "psql", "-U", "postgres", "-d", database, "-tA"],
            input=query,
        )
        assert done.returncode == 0, done.stderr
        database_bytes, tables_bytes = done.stdout.split()
        sizes["database"] += int(database_bytes)
        sizes["tables"] += int(tables_bytes)
    return sizes


def _round(lab, engine: str, containers: list[str], databases: list[str]) -> list[float]:
    """One round: every app's client at once; the rate per app."""
    where = [(containers[i % len(containers)], databases[i]) for i in range(APPS)]
    one = _pg_round if engine == "postgres" else _my_round
    with ThreadPoolExecutor(APPS) as pool:
        return list(pool.map(lambda cd: one(lab, *cd), where))


def _compare(lab, tag: str, engine: str, command: list[str] | None = None) -> dict:
    """Both setups side by side on the device, loaded in turns (separate, shared; then
    shared, separate; ...) so that a busy moment of the machine hits both alike."""
    databases = [f"app{i}" for i in range(APPS)]
    sides: dict[str, dict] = {"separate": {"rates": []}, "shared": {"rates": []}}
    try:
        sides["separate"]["containers"] = _start_separate(lab, tag, engine, databases)
        sides["shared"]["containers"] = _start_shared(lab, tag, engine, command)
        for side in sides.values():
            for container in side["containers"]:
                _wait(lab, engine, container)
        if engine == "mariadb":  # a bundled PostgreSQL got its database at first start
            for container, database in zip(sides["separate"]["containers"], databases, strict=True):
                _sql(lab, engine, container, f"CREATE DATABASE {engines.my_ident(database)};")
        for database in databases:  # the product's own SQL: database, role, isolation
            sql = engines.provision_sql(engine, database=database, role=database, password=PASSWORD)
            _sql(lab, engine, sides["shared"]["containers"][0], sql)
        time.sleep(10)
        for side in sides.values():
            side["idle"] = _memory(lab, side["containers"])
            side["idle_stat"] = _breakdown(lab, side["containers"])
        for side in sides.values():
            _init(lab, engine, side["containers"], databases)
        for n in range(ROUNDS):
            order = ("separate", "shared") if n % 2 == 0 else ("shared", "separate")
            for label in order:
                side = sides[label]
                cpu = _cpu_seconds(lab, side["containers"])
                side["rates"].append(_round(lab, engine, side["containers"], databases))
                side["cpu"] = side.get("cpu", 0.0) + _cpu_seconds(lab, side["containers"]) - cpu
                if n == ROUNDS - 1:  # right after its own last round
                    side["loaded"] = _memory(lab, side["containers"])
                    side["loaded_stat"] = _breakdown(lab, side["containers"])
        if engine == "postgres":
            for side in sides.values():
                side["sizes"] = _pg_sizes(lab, side["containers"], databases)
    finally:
        _remove(lab, tag, engine)
    for side in sides.values():
        side["per_app"] = [statistics.median(r[i] for r in side["rates"]) for i in range(APPS)]
        # every app does the same work in a round: the work of all five divided by the time
        # until the last one finished is, per app, the slowest app's rate
        side["system"] = statistics.median(min(r) for r in side["rates"])
    return sides


def _report(report, engine: str, sides: dict, seconds: float) -> None:
    separate, shared = sides["separate"], sides["shared"]
    unit = "tps" if engine == "postgres" else "queries/s"
    what = "transactions" if engine == "postgres" else "queries"
    report(f"{engine} on {DEVICE}, {APPS} apps, {ROUNDS} rounds of load, {seconds:.0f} s")
    report(f"  shared settings: {_shared_command(engine)}")
    for label, figures in (("separate", separate), ("shared", shared)):
        report(
            f"  {label:8} memory idle {figures['idle'] / MIB:6.1f} MiB, after load "
            f"{figures['loaded'] / MIB:6.1f} MiB"
        )
        report(f"           idle:       {_describe(figures['idle_stat'])}")
        report(f"           after load: {_describe(figures['loaded_stat'])}")
        for n, rates in enumerate(figures["rates"], 1):
            report(f"           round {n} {unit} per app: " + ", ".join(f"{r:.0f}" for r in rates))
        work = (
            ROUNDS * APPS * (PG_CLIENTS * PG_TRANSACTIONS if engine == "postgres" else MY_QUERIES)
        )
        report(f"           CPU time per 1000 {what}: {figures['cpu'] / work * 1000:.2f} s")
        report(
            f"           median of each app's rates ({unit}): "
            + ", ".join(f"{r:.0f}" for r in figures["per_app"])
        )
    report(
        f"  shared/separate memory: idle {shared['idle'] / separate['idle']:.2f}x, after load "
        f"{shared['loaded'] / separate['loaded']:.2f}x (goal <= 0.35x)"
    )
    if engine == "postgres":  # its cache: shared buffers (shmem) and the OS page cache
        cached = {
            label: (f["loaded_stat"]["total_shmem"] + f["loaded_stat"]["total_active_file"]) / MIB
            for label, f in (("separate", separate), ("shared", shared))
        }
        report(
            f"  after load, cached data pages (shared memory + active page cache): separate "
            f"{cached['separate']:.0f} MiB, shared {cached['shared']:.0f} MiB; the rest: "
            f"separate {separate['loaded'] / MIB - cached['separate']:.0f} MiB, shared "
            f"{shared['loaded'] / MIB - cached['shared']:.0f} MiB"
        )
        tables = shared["sizes"]["tables"] / MIB
        goal = 0.35 * separate["loaded"] / MIB
        report(
            f"  the apps' data after load (five databases): tables and indexes separate "
            f"{separate['sizes']['tables'] / MIB:.1f} MiB, shared {tables:.1f} MiB (whole "
            f"databases with their catalogs: {separate['sizes']['database'] / MIB:.1f} / "
            f"{shared['sizes']['database'] / MIB:.1f} MiB); the load touches every page of "
            f"them. 0.35x of separate is {goal:.0f} MiB: the shared server's data alone is "
            f"{tables / goal:.0%} of it, leaving {goal - tables:.0f} MiB for the server "
            f"itself (its processes, kernel memory, buffer headers and catalogs: "
            f"{shared['idle'] / MIB:.0f} MiB when idle, before any app data)"
        )
    system = shared["system"] / separate["system"]
    mean_rates = statistics.mean(shared["per_app"]) / statistics.mean(separate["per_app"])
    report(
        f"  shared/separate throughput per app: {system:.2f}x (goal >= 0.9x): the five apps' "
        f"work / the time until the last finished, median of the rounds: separate "
        f"{separate['system']:.0f}, shared {shared['system']:.0f} {unit}"
    )
    report(
        f"  (the mean of the apps' own rates gives {mean_rates:.2f}x: five separate servers "
        "are scheduled unevenly, an app that finishes early shows a high rate and hands its "
        "CPU to the others; one shared server serves its apps evenly)"
    )
    one = "transaction" if engine == "postgres" else "query"
    report(
        f"  shared/separate CPU time per {one}: {shared['cpu'] / separate['cpu']:.2f}x "
        "(the same work on both sides: the least noisy figure on a busy machine)"
    )


def _shared_command(engine: str) -> str:
    service = engines.shared_compose(
        engine, project="unused", admin_password=PASSWORD, network="unused"
    )["services"][engines.ENGINES[engine].service]
    return " ".join(service.get("command") or []) + f"; ulimits {service.get('ulimits')}"


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_five_apps_separate_vs_shared(lab, report, engine):
    tag = secrets.token_hex(3)
    started = time.monotonic()
    sides = _compare(lab, tag, engine)
    _report(report, engine, sides, time.monotonic() - started)
