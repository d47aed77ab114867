"""restic, as the backups run it: command lines, secrets on stdin, JSON and exit codes.

Pure functions (no Django, no SSH): everything here is unit-tested.

restic runs on the app's device in a container of the official image (IMAGE, pinned):

    docker run --rm -i --memory 512m -e RESTIC_REPOSITORY -e RESTIC_PASSWORD ...
        -v <volume>:/data/<volume>:ro -v homelab-restic-cache:/cache
        restic/restic:0.17.3 --cache-dir /cache backup --json --host H --tag app:S ...

Secrets (the repository password, S3 keys, a database admin password) never appear on a
command line: `device_command()` wraps the docker command in a fixed `sh -c` script that
reads `NAME=value` lines from its stdin up to a blank line, exports them, and names them
to docker with `-e NAME` (no value), so docker copies them from its own environment into
the container. `ps` on the device shows names only. Nothing is written to a file.

Versions: the lab's stand-in is Debian's restic 0.14, the pinned image 0.17. Only flags
both accept are used (`--json`, `--host`, `--tag`, `--stdin`, `--stdin-filename`,
`--keep-*`, `--group-by`, `--read-data-subset`, `--target`, `--include`, `--cache-dir`);
what differs is how errors are told (0.17 has exit codes 10, 11, 12; 0.14 says it in
words), and `classify()` reads both.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

IMAGE = "restic/restic:0.17.3"
CACHE_VOLUME = "homelab-restic-cache"
CACHE_PATH = "/cache"
DATA_ROOT = "/data"
DEFAULT_MEMORY = "512m"

SNAPSHOT_ID_RE = re.compile(r"[0-9a-f]{8,64}")
ENV_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
VOLUME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
HOST_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
TAG_RE = re.compile(r"[a-z]+:[a-z0-9][a-z0-9_-]{0,62}")
FILENAME_RE = re.compile(r"[a-z0-9][a-z0-9_]{0,60}\.sql")
MEMORY_RE = re.compile(r"[1-9][0-9]{0,5}[mg]")
CONTAINER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
DB_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,40}")

# restic's exit codes (0.17; 0.14 has 0, 1 and 3 only)
EXIT_OK = 0
EXIT_FATAL = 1
EXIT_INCOMPLETE = 3
EXIT_NO_REPOSITORY = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12


class ResticInputError(ValueError):
    """A value that may not reach a command line."""


def _full(pattern: re.Pattern, value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ResticInputError(f"{what} {value!r} is not allowed here.")
    return value


# ------------------------------------------------------------------------ repository
@dataclass(frozen=True)
class Access:
    """Where a repository is and the secrets to open it (all go in the environment)."""

    repository: str  # "s3:http://host:9000/bucket/path" or "sftp:user@host:/path"
    password: str
    env: dict[str, str] = field(default_factory=dict)  # AWS_ACCESS_KEY_ID, ...

    def environment(self) -> dict[str, str]:
        return {"RESTIC_REPOSITORY": self.repository, "RESTIC_PASSWORD": self.password, **self.env}

    def secrets(self) -> list[str]:
        names = ("RESTIC_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        return [v for k, v in self.environment().items() if k in names and v]


def s3_repository(endpoint: str, bucket: str, path: str) -> str:
    """`s3:<endpoint>/<bucket>/<path>`; endpoint http(s)://host[:port], names strict."""
    _full(re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"), endpoint.rstrip("/"), "Endpoint")
    _full(re.compile(r"[a-z0-9][a-z0-9.-]{1,62}"), bucket, "Bucket")
    _full(re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,200}"), path, "Path")
    if ".." in path.split("/"):
        raise ResticInputError(f"Path {path!r} is not allowed here.")
    return f"s3:{endpoint.rstrip('/')}/{bucket}/{path}"


def s3_env(access_key: str, secret_key: str, region: str = "") -> dict[str, str]:
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    if region:
        env["AWS_DEFAULT_REGION"] = region
    return env


def host_for(device_id: int, project: str) -> str:
    """The fixed `--host` of one app on one device (restic groups snapshots by it)."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"d{int(device_id)}-{project}".lower()).strip("-")[:63]
    return _full(HOST_RE, name, "Host name")


# --------------------------------------------------------------------------- commands
def global_flags(upload_limit_kib: int | None = None) -> list[str]:
    flags = ["--cache-dir", CACHE_PATH]
    if upload_limit_kib:
        flags += ["--limit-upload", str(int(upload_limit_kib))]  # KiB/s, 0.14 and 0.17
    return flags


def init_args() -> list[str]:
    return ["init"]


def cat_config_args() -> list[str]:
    """Exit 0 when the repository exists and the password opens it."""
    return ["cat", "config"]


def version_args() -> list[str]:
    return ["version"]


def _tags(app: str, kind: str, extra: tuple[str, ...] = ()) -> list[str]:
    if kind not in ("volumes", "db"):
        raise ResticInputError(f"Kind {kind!r} is not allowed here.")
    out = []
    for tag in (f"app:{app}", f"kind:{kind}", *extra):
        out += ["--tag", _full(TAG_RE, tag, "Tag")]
    return out


def backup_args(*, host: str, app: str, volumes: list[str]) -> list[str]:
    """Back up the volumes mounted at /data/<volume> (see docker_run)."""
    if not volumes:
        raise ResticInputError("There is no volume to back up.")
    paths = [f"{DATA_ROOT}/{_full(VOLUME_RE, v, 'Volume')}" for v in volumes]
    return [
        "backup",
        "--json",
        "--host",
        _full(HOST_RE, host, "Host name"),
        *_tags(app, "volumes"),
        *paths,
    ]


def backup_stdin_args(*, host: str, app: str, database: str) -> list[str]:
    """A database dump from stdin, stored as /<database>.sql."""
    _full(DB_NAME_RE, database, "Database name")
    return [
        "backup",
        "--json",
        "--host",
        _full(HOST_RE, host, "Host name"),
        *_tags(app, "db", (f"db:{database.replace('_', '-')}",)),
        "--stdin",
        "--stdin-filename",
        _full(FILENAME_RE, f"{database}.sql", "File name"),
    ]


def snapshots_args(*, host: str | None = None, app: str | None = None) -> list[str]:
    args = ["snapshots", "--json"]
    if host:
        args += ["--host", _full(HOST_RE, host, "Host name")]
    if app:
        args += ["--tag", _full(TAG_RE, f"app:{app}", "Tag")]
    return args


@dataclass(frozen=True)
class Retention:
    daily: int = 7
    weekly: int = 4
    monthly: int = 6

    def __post_init__(self):
        for value in (self.daily, self.weekly, self.monthly):
            if not isinstance(value, int) or value < 0 or value > 1000:
                raise ResticInputError("Retention counts are whole numbers from 0 to 1000.")
        if not (self.daily or self.weekly or self.monthly):
            raise ResticInputError("A retention that keeps nothing would delete every snapshot.")


def forget_args(*, host: str, app: str, keep: Retention) -> list[str]:
    """forget by the policy, per host and tags (volumes and each database apart)."""
    return [
        "forget",
        "--json",
        "--host",
        _full(HOST_RE, host, "Host name"),
        "--tag",
        _full(TAG_RE, f"app:{app}", "Tag"),
        "--group-by",
        "host,tags",
        "--keep-daily",
        str(keep.daily),
        "--keep-weekly",
        str(keep.weekly),
        "--keep-monthly",
        str(keep.monthly),
    ]


def forget_ids_args(snapshot_ids: list[str]) -> list[str]:
    if not snapshot_ids:
        raise ResticInputError("No snapshot to forget.")
    return ["forget", *(_full(SNAPSHOT_ID_RE, s, "Snapshot id") for s in snapshot_ids)]


def prune_args() -> list[str]:
    return ["prune"]


def unlock_args() -> list[str]:
    """Removes stale locks only (locks of live restic processes stay)."""
    return ["unlock"]


def check_args(*, subset: int, of: int = 30) -> list[str]:
    if not (1 <= subset <= of <= 1000):
        raise ResticInputError("The data subset is n/t with 1 <= n <= t.")
    return ["check", "--read-data-subset", f"{subset}/{of}"]


def restore_args(snapshot_id: str, volumes: list[str]) -> list[str]:
    """Restore the volumes' folders of a snapshot into /data/<volume> (mounted rw)."""
    args = ["restore", _full(SNAPSHOT_ID_RE, snapshot_id, "Snapshot id"), "--target", "/"]
    for v in volumes:
        args += ["--include", f"{DATA_ROOT}/{_full(VOLUME_RE, v, 'Volume')}"]
    return args


def dump_args(snapshot_id: str, database: str) -> list[str]:
    """Print a stored database dump on stdout."""
    _full(DB_NAME_RE, database, "Database name")
    return ["dump", _full(SNAPSHOT_ID_RE, snapshot_id, "Snapshot id"), f"/{database}.sql"]


def docker_run(
    restic_args: list[str],
    *,
    env_names: list[str],
    volumes: list[str] = (),
    read_only: bool = True,
    memory: str = DEFAULT_MEMORY,
    stdin: bool = False,
    image: str = IMAGE,
    network: str | None = None,
    name: str | None = None,
    upload_limit_kib: int | None = None,
) -> list[str]:
    """`docker run --rm` of restic: volumes at /data/<volume> (read-only unless told),
    its cache volume, a memory limit, env vars by NAME only (values come from docker's
    own environment: see device_command)."""
    args = ["docker", "run", "--rm"]
    if name:  # so that a cancel can `docker stop` it
        args += ["--name", _full(CONTAINER_RE, name, "Container name")]
    if stdin:
        args.append("-i")
    args += ["--memory", _full(MEMORY_RE, memory, "Memory limit")]
    if network:
        args += ["--network", _full(CONTAINER_RE, network, "Network")]
    for name in env_names:
        args += ["-e", _full(ENV_NAME_RE, name, "Variable")]
    for v in volumes:
        target = f"{DATA_ROOT}/{_full(VOLUME_RE, v, 'Volume')}"
        args += ["-v", f"{v}:{target}" + (":ro" if read_only else "")]
    args += ["-v", f"{CACHE_VOLUME}:{CACHE_PATH}", image, *global_flags(upload_limit_kib)]
    return args + restic_args


# The one script every restic command runs in: `NAME=value` lines from stdin up to a
# blank line are exported (the values never reach a command line), then $1 runs.
_ENV_READER = 'while IFS= read -r line; do [ -z "$line" ] && break; export "$line"; done; eval "$1"'


def env_stdin(env: dict[str, str]) -> bytes:
    """The stdin that carries `env` to device_command's script."""
    lines = []
    for name, value in env.items():
        _full(ENV_NAME_RE, name, "Variable")
        if "\n" in value or "\r" in value or "\0" in value:
            raise ResticInputError(f"The value of {name} cannot hold a line break.")
        lines.append(f"{name}={value}")
    return ("\n".join(lines) + "\n\n").encode()


def device_command(command_line: str) -> list[str]:
    """`sh -c <reader> sh <command line>`: run `command_line` (built with shlex.join
    from validated parts, no secrets in it) after exporting stdin's env lines."""
    return ["sh", "-c", _ENV_READER, "sh", command_line]


def dump_command(engine: str, container: str, database: str) -> list[str]:
    """The dump of one pooled database on stdout, run in the shared server's container.
    MariaDB's admin password comes from the env var MYSQL_PWD (see device_command)."""
    _full(CONTAINER_RE, container, "Container")
    _full(DB_NAME_RE, database, "Database name")
    if engine == "postgres":
        return [
            *("docker", "exec", container, "pg_dump", "-U", "postgres"),
            *("--clean", "--if-exists", "--no-password", "-d", database),
        ]
    if engine == "mariadb":
        return [
            *("docker", "exec", "-e", "MYSQL_PWD", container, "mariadb-dump", "-uroot"),
            *("--single-transaction", "--routines", "--databases", database),
        ]
    raise ResticInputError(f"Databases of {engine!r} are not dumped.")


def load_command(engine: str, container: str, database: str) -> list[str]:
    """Load a dump from stdin into the shared server (as its admin)."""
    _full(CONTAINER_RE, container, "Container")
    _full(DB_NAME_RE, database, "Database name")
    if engine == "postgres":
        return [
            *("docker", "exec", "-i", container, "psql", "-q", "-U", "postgres"),
            *("-v", "ON_ERROR_STOP=1", "-d", database),
        ]
    if engine == "mariadb":
        return ["docker", "exec", "-i", "-e", "MYSQL_PWD", container, "mariadb", "-uroot"]
    raise ResticInputError(f"Databases of {engine!r} are not loaded.")


DUMP_EXIT_MARK = "homelab-dump-exit="


def piped(first: list[str], second: list[str]) -> str:
    """`first | second` whose output ends with a line `homelab-dump-exit=<first's exit>`
    on stderr (POSIX sh has no pipefail), and which exits with `second`'s code."""
    return (
        f'rc=$(mktemp); {{ {shlex.join(first)}; echo $? > "$rc"; }} | {shlex.join(second)}; '
        f'r=$?; echo "{DUMP_EXIT_MARK}$(cat "$rc")" >&2; rm -f "$rc"; exit $r'
    )


def dump_exit(stderr: str) -> int | None:
    found = re.findall(rf"^{DUMP_EXIT_MARK}(\d+)$", stderr or "", re.M)
    return int(found[-1]) if found else None


# ---------------------------------------------------------------------------- output
@dataclass
class BackupOutcome:
    snapshot_id: str = ""
    files_new: int = 0
    files_changed: int = 0
    files_total: int = 0
    bytes_total: int = 0
    bytes_added: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # "could not read x: permission denied"
    last_status: dict = field(default_factory=dict)


def json_lines(text: str) -> list[dict]:
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def status_progress(status: dict) -> dict:
    """A `message_type: status` line as the runner's progress: percent, bytes, files, ETA."""
    return {
        "percent": 100.0 * float(status.get("percent_done") or 0.0),
        "bytes_done": int(status.get("bytes_done") or 0),
        "bytes_total": int(status.get("total_bytes") or 0),
        "files_done": int(status.get("files_done") or 0),
        "files_total": int(status.get("total_files") or 0),
        "eta_seconds": status.get("seconds_remaining"),
    }


def parse_backup(stdout: str, stderr: str = "") -> BackupOutcome:
    """restic backup --json: its status lines, errors and summary (0.14 and 0.17)."""
    outcome = BackupOutcome()
    for msg in json_lines(stdout) + json_lines(stderr):
        kind = msg.get("message_type")
        if kind == "status":
            outcome.last_status = status_progress(msg)
        elif kind == "error":
            err = msg.get("error")
            text = err.get("message") if isinstance(err, dict) else str(err or "")
            item = msg.get("item") or ""
            outcome.errors.append(f"{item}: {text}".strip(": ") if item else str(text))
        elif kind == "summary":
            outcome.snapshot_id = str(msg.get("snapshot_id") or "")
            outcome.files_new = int(msg.get("files_new") or 0)
            outcome.files_changed = int(msg.get("files_changed") or 0)
            outcome.files_total = int(msg.get("total_files_processed") or 0)
            outcome.bytes_total = int(msg.get("total_bytes_processed") or 0)
            outcome.bytes_added = int(msg.get("data_added_packed") or msg.get("data_added") or 0)
            outcome.seconds = float(msg.get("total_duration") or 0.0)
    if outcome.snapshot_id and not SNAPSHOT_ID_RE.fullmatch(outcome.snapshot_id):
        outcome.snapshot_id = ""
    # Older restic prints errors as plain lines on stderr
    for line in (stderr or "").splitlines():
        if line.startswith("error: ") or ": permission denied" in line:
            text = line.removeprefix("error: ").strip()
            if text not in outcome.errors:
                outcome.errors.append(text)
    return outcome


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    time: str
    host: str
    tags: tuple[str, ...]
    paths: tuple[str, ...]


def parse_snapshots(stdout: str) -> list[SnapshotInfo]:
    try:
        data = json.loads(stdout or "[]")
    except ValueError:
        return []
    out = []
    for s in data if isinstance(data, list) else []:
        sid = str(s.get("id") or "")
        if not SNAPSHOT_ID_RE.fullmatch(sid):
            continue
        out.append(
            SnapshotInfo(
                id=sid,
                time=str(s.get("time") or ""),
                host=str(s.get("hostname") or ""),
                tags=tuple(s.get("tags") or ()),
                paths=tuple(s.get("paths") or ()),
            )
        )
    return out


def parse_forget(stdout: str) -> tuple[list[str], list[str]]:
    """(kept ids, removed ids) from forget --json (a list of groups)."""
    kept, removed = [], []
    for group in json.loads(stdout or "[]") or []:
        kept += [str(s.get("id")) for s in group.get("keep") or []]
        removed += [str(s.get("id")) for s in group.get("remove") or []]
    return kept, removed


def parse_version(text: str) -> tuple[int, ...]:
    """`restic 0.14.0 compiled with go1.19.8 on linux/amd64` -> (0, 14, 0)."""
    m = re.search(r"restic (\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else ()


# ------------------------------------------------------------------------ exit codes
@dataclass(frozen=True)
class Verdict:
    """What a restic run means: ok, warning (done, but not whole) or failed, with words."""

    status: str  # "ok", "warning", "failed"
    reason: str  # "", "incomplete", "locked", "no_repository", "wrong_password",
    #                "auth", "no_bucket", "unreachable", "failed"
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_PATTERNS = (
    # (reason, regex on stderr, words)
    (
        "wrong_password",
        r"wrong password or no key found",
        "The repository's password does not open it (someone changed it, or this "
        "destination holds another install's repository).",
    ),
    (
        "locked",
        r"repository is already locked|unable to create lock|unable to acquire lock",
        "The repository is locked by another restic run. The product removes a stale lock "
        "itself when none of its jobs is using this repository; try again in a few minutes.",
    ),
    (
        "auth",
        r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Access Denied|"
        r"access key id you provided does not exist|403 Forbidden|invalid credentials|"
        r"signature we calculated does not match",
        "The storage refused the access key or secret key. Check both on the destination "
        "and press Test.",
    ),
    (
        "no_bucket",
        r"NoSuchBucket|bucket does not exist",
        "The bucket does not exist on the storage. Create it (or fix its name) and press Test.",
    ),
    (
        "unreachable",
        r"connection refused|no such host|i/o timeout|network is unreachable|"
        r"no route to host|dial tcp|context deadline exceeded",
        "The storage could not be reached from the device. Check the endpoint (address and "
        "port) and that the device can reach it.",
    ),
    (
        "no_repository",
        r"Is there a repository at the following location\?|repository does not exist|"
        r"unable to open config file",
        "There is no restic repository there yet.",
    ),
)


def classify(exit_code: int, stderr: str = "", *, what: str = "restic") -> Verdict:
    """Read restic's exit code and words (0.14 says in words what 0.17 says in codes).

    0 ok; 3 some files could not be read: a warning, never success; 10 no repository;
    11 locked; 12 wrong password; anything else failed, with the reason found in stderr."""
    if exit_code == EXIT_OK:
        return Verdict("ok", "", "")
    if exit_code == EXIT_INCOMPLETE:
        return Verdict(
            "warning",
            "incomplete",
            f"{what} finished, but some files could not be read, so the snapshot is not "
            "whole. Check the files named in the output (permissions, files removed "
            "while reading).",
        )
    by_code = {
        EXIT_NO_REPOSITORY: "no_repository",
        EXIT_LOCKED: "locked",
        EXIT_WRONG_PASSWORD: "wrong_password",
    }
    text = stderr or ""
    for reason, pattern, words in _PATTERNS:
        if by_code.get(exit_code) == reason or re.search(pattern, text, re.I):
            return Verdict("failed", reason, f"{what} failed: {words}")
    if exit_code in by_code:
        reason = by_code[exit_code]
        words = next(w for r, _, w in _PATTERNS if r == reason)
        return Verdict("failed", reason, f"{what} failed: {words}")
    last = next(
        (ln.strip() for ln in reversed(text.splitlines()) if ln.strip() and "{" not in ln[:1]),
        "",
    )
    return Verdict(
        "failed",
        "failed",
        f"{what} failed (restic exit {exit_code})" + (f": {last[-400:]}" if last else "."),
    )
