"""What a device reports: one fixed shell script per poll, and pure parsing of its output.

The script (`METRICS_SCRIPT`) is ours and constant; it is sent as one `sh -c` exec and prints
sections that start with a line `@@<name>`. `parse_metrics` turns that text into `Metrics`
without any I/O, so every rule below is unit-tested against captured outputs.

Rules:
1. RAM. /proc/meminfo gives MemTotal and MemAvailable. Where the device is itself a
   container or VM with a cgroup memory limit (v1 memory.limit_in_bytes, v2 memory.max),
   the smaller of the limit and MemTotal is the total. A limit of 2^60 or more, "max" or -1
   means no limit. Used = cgroup usage minus inactive file cache (as `docker stats` does)
   when a limit applies, else MemTotal - MemAvailable.
2. CPU cores = min(nproc, quota / period) (v1 cpu.cfs_quota_us / cfs_period_us, v2 cpu.max).
3. CPU usage: the script samples counters at its start and its end. With the previous
   poll's counters we report the average since that poll; otherwise the average over the
   script's own run. Inside a limited container the cgroup's CPU time (cpuacct.usage or
   cpu.stat usage_usec) over wall time and cores is used, because /proc/stat shows the host.
4. Storage = the filesystem Docker stores its data on (`docker info` DockerRootDir); / when
   Docker is absent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

from devices import ssh

logger = logging.getLogger(__name__)

NO_LIMIT_THRESHOLD = 2**60

# Each `sec NAME` starts a section; errors are silenced so a missing file is an empty section.
# METRICS_FUNCTIONS defines the functions; `main SLEEP MODE ROOT` prints the sections.
# Polls run it in the device's kept shell (devices.kept), where `facts` (what does not change
# while the device runs) is printed once into HL_FACTS; METRICS_SCRIPT runs it as one `sh -c`.
METRICS_FUNCTIONS = r"""
sec() { printf '\n@@%s\n' "$1"; }
# File reading and filtering use shell builtins only: every process started on the device
# costs it CPU (a poll used to start about 30), and a Pi or a busy server feels that.
cat1() { while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done < "$1"; }
first() { for f in "$@"; do if [ -r "$f" ]; then cat1 "$f"; return 0; fi; done; return 0; }
# pick FILE KEY...: the lines of FILE whose key is one of KEY; stops once all were found
# (the shell reads a file one byte per system call: MemTotal..Cached are its first lines).
pick() {
  f=$1; shift; [ -r "$f" ] || return 0
  n=0
  while IFS= read -r l || [ -n "$l" ]; do
    k=${l%%[:= ]*}; for w in "$@"; do if [ "$k" = "$w" ]; then printf '%s\n' "$l"; n=$((n+1)); fi; done
    [ "$n" -lt $# ] || break
  done < "$f"
}
now() { first /proc/uptime; }
cgcpu() {
  first /sys/fs/cgroup/cpuacct/cpuacct.usage /sys/fs/cgroup/cpu,cpuacct/cpuacct.usage /sys/fs/cgroup/cpuacct,cpu/cpuacct.usage
  pick /sys/fs/cgroup/cpu.stat usage_usec
}
cpu() { now; IFS= read -r l < /proc/stat && printf '%s\n' "$l"; cgcpu; }
facts() {
  sec nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
  sec arch; uname -m
  sec kernel; first /proc/sys/kernel/osrelease
  sec os; if [ -r /etc/os-release ]; then pick /etc/os-release PRETTY_NAME; else uname -s; fi
}
main() {
sec cpu_start; cpu
if [ -n "$1" ] && [ "$1" != 0 ]; then sleep "$1" 2>/dev/null || sleep 1; fi
sec cpu_mid; cpu
sec meminfo; pick /proc/meminfo MemTotal MemAvailable MemFree Buffers Cached
sec cg1_mem_limit; first /sys/fs/cgroup/memory/memory.limit_in_bytes
sec cg1_mem_usage; first /sys/fs/cgroup/memory/memory.usage_in_bytes
sec cg1_mem_stat; pick /sys/fs/cgroup/memory/memory.stat total_inactive_file inactive_file
sec cg2_mem_max; first /sys/fs/cgroup/memory.max
sec cg2_mem_current; first /sys/fs/cgroup/memory.current
sec cg2_mem_stat; pick /sys/fs/cgroup/memory.stat inactive_file
sec cg1_cfs_quota; first /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us /sys/fs/cgroup/cpuacct,cpu/cpu.cfs_quota_us
sec cg1_cfs_period; first /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us /sys/fs/cgroup/cpuacct,cpu/cpu.cfs_period_us
sec cg2_cpu_max; first /sys/fs/cgroup/cpu.max
sec loadavg; first /proc/loadavg
sec uptime; first /proc/uptime
if [ -n "${HL_FACTS:-}" ]; then printf '%s\n' "$HL_FACTS"; else facts; fi
sec docker_path; command -v docker 2>/dev/null
root=${3:-/}
compose() {
  if v=$(docker compose version --short 2>/dev/null) && [ -n "$v" ]; then printf 'v2 %s\n' "$v"
  elif command -v docker-compose >/dev/null 2>&1; then printf 'v1 %s\n' "$(docker-compose version --short 2>/dev/null)"
  fi
}
if [ "${2:-cli}" = cli ]; then
  root=/
  # The two docker CLI calls take most of the time; run the compose check alongside docker info.
  tmp=$(mktemp -d 2>/dev/null) || tmp=
  if [ -n "$tmp" ] && command -v docker >/dev/null 2>&1; then compose > "$tmp/compose" 2>/dev/null & fi
  sec docker_info
  if command -v docker >/dev/null 2>&1; then
    info=$(docker info --format '{{.ServerVersion}}|{{.DockerRootDir}}|{{.ContainersRunning}}' 2>&1)
    rc=$?
    printf '%s\nrc=%s\n' "$info" "$rc"
    if [ "$rc" = 0 ]; then
      r=$(printf '%s' "$info" | tail -n 1 | cut -d'|' -f2)
      if [ -n "$r" ] && [ -d "$r" ]; then root=$r; fi
    fi
  fi
  wait
  sec compose
  if [ -n "$tmp" ]; then cat "$tmp/compose" 2>/dev/null; rm -rf "$tmp"; elif command -v docker >/dev/null 2>&1; then compose; fi
fi
[ -d "$root" ] || root=/
# df prints a header and one line (the parser takes the last); no pipe, one process.
sec df; printf '%s\n' "$root"; df -P -B1 "$root" 2>/dev/null
sec cpu_end; cpu
sec end
}
"""
# One write at the end: printed line by line, the output would leave the device as dozens
# of small SSH packets, each costing both sides a round of crypto.
METRICS_SCRIPT = METRICS_FUNCTIONS + 'HL_FACTS=\nout=$(main "$@"); printf \'%s\\n\' "$out"\n'
# The kept shell's set-up: the functions, then the facts read once.
KEPT_PRELUDE = METRICS_FUNCTIONS + "HL_FACTS=$(facts)\n"


def kept_command(args: list[str], *, refresh_facts: bool = False) -> str:
    """The command line a kept shell runs for one poll (args as for METRICS_SCRIPT)."""
    import shlex

    call = "out=$(main " + " ".join(shlex.quote(a) for a in args) + "); printf '%s\\n' \"$out\""
    return ("HL_FACTS=$(facts); " if refresh_facts else "") + call


@dataclass
class CpuCounters:
    """Raw counters for CPU usage between two samples."""

    clock_ns: int | None = None  # wall clock on the device
    busy_jiffies: int | None = None  # /proc/stat, all CPUs
    total_jiffies: int | None = None
    cgroup_usage_ns: int | None = None  # CPU time used by the cgroup

    @classmethod
    def from_dict(cls, data: dict | None) -> CpuCounters | None:
        if not data:
            return None
        try:
            return cls(
                **{
                    k: data.get(k)
                    for k in ("clock_ns", "busy_jiffies", "total_jiffies", "cgroup_usage_ns")
                }
            )
        except TypeError:
            return None


@dataclass
class Metrics:
    ram_total_bytes: int | None = None
    ram_used_bytes: int | None = None
    storage_total_bytes: int | None = None
    storage_used_bytes: int | None = None
    storage_path: str = ""
    cpu_cores: float | None = None
    cpu_usage_percent: float | None = None
    load_1m: float | None = None
    load_5m: float | None = None
    load_15m: float | None = None
    uptime_seconds: int | None = None
    arch: str = ""
    os_name: str = ""
    kernel: str = ""
    docker_installed: bool = False
    docker_running: bool = False
    docker_problem: str = ""  # what `docker info` said when it failed
    docker_version: str = ""
    docker_root_dir: str = ""
    containers_running: int | None = None
    compose_version: str = ""
    compose_command: str = ""  # "docker compose" or "docker-compose" or ""
    memory_limited: bool = False
    cpu_limited: bool = False
    cpu_counters: dict = field(default_factory=dict)  # this poll's end sample, for the next one
    # Our apps' containers by compose project (devices.containers); None: not read this poll.
    app_containers: dict | None = None

    @property
    def docker_ok(self) -> bool:
        return self.docker_installed and self.docker_running

    @property
    def compose_ok(self) -> bool:
        return bool(self.compose_command)

    def as_dict(self) -> dict:
        return asdict(self)


# --- parsing helpers ------------------------------------------------------------------------


def split_sections(output: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith("@@") and len(line) > 2 and " " not in line:
            if name is not None:
                sections[name] = "\n".join(lines).strip()
            name, lines = line[2:].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        sections[name] = "\n".join(lines).strip()
    return sections


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip().split()[0] if text.strip() else ""
    try:
        return int(text)
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def parse_meminfo(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
            values[key.strip()] = int(parts[0]) * scale
    return values


def parse_memory_limit(text: str | None) -> int | None:
    """A cgroup memory limit in bytes, or None for no limit ("max", -1, >= 2^60, missing)."""
    if text is None:
        return None
    text = text.strip()
    if not text or text == "max":
        return None
    value = _int(text)
    if value is None or value <= 0 or value >= NO_LIMIT_THRESHOLD:
        return None
    return value


def parse_stat_keys(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def parse_cpu_quota(sections: dict[str, str]) -> float | None:
    """CPUs allowed by the cgroup quota, or None when unlimited."""
    quota, period = _int(sections.get("cg1_cfs_quota")), _int(sections.get("cg1_cfs_period"))
    if quota is not None and period and quota > 0:
        return quota / period
    cpu_max = (sections.get("cg2_cpu_max") or "").split()
    if len(cpu_max) == 2 and cpu_max[0] != "max":
        quota2, period2 = _int(cpu_max[0]), _int(cpu_max[1])
        if quota2 and period2 and quota2 > 0:
            return quota2 / period2
    return None


def parse_cpu_sample(text: str) -> CpuCounters:
    counters = CpuCounters()
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "ns" and len(parts) == 2 and parts[1].isdigit():
            counters.clock_ns = int(parts[1])
        elif parts[0] == "cpu" and len(parts) >= 5:
            numbers = [int(p) for p in parts[1:] if p.isdigit()]
            # user nice system idle iowait irq softirq steal [guest guest_nice]; guests are
            # already counted in user/nice.
            numbers = numbers[:8]
            idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0)
            counters.total_jiffies = sum(numbers)
            counters.busy_jiffies = counters.total_jiffies - idle
        elif parts[0] == "usage_usec" and len(parts) == 2 and parts[1].isdigit():
            counters.cgroup_usage_ns = int(parts[1]) * 1000
        elif len(parts) == 1 and parts[0].isdigit() and counters.cgroup_usage_ns is None:
            counters.cgroup_usage_ns = int(parts[0])  # cpuacct.usage, nanoseconds
        elif (
            len(parts) >= 1
            and counters.clock_ns is None
            and _float(parts[0]) is not None
            and "." in parts[0]
        ):
            counters.clock_ns = int(float(parts[0]) * 1e9)  # /proc/uptime fallback
    return counters


def _window_seconds(start: CpuCounters, end: CpuCounters) -> float:
    if start.clock_ns is None or end.clock_ns is None:
        return 0.0
    return (end.clock_ns - start.clock_ns) / 1e9


def cpu_usage_percent(
    start: CpuCounters | None, end: CpuCounters, *, cores: float | None, use_cgroup: bool
) -> float | None:
    """Average CPU use between two samples, 0-100 % of the device's cores."""
    if start is None:
        return None
    if use_cgroup and cores:
        if None not in (start.cgroup_usage_ns, end.cgroup_usage_ns, start.clock_ns, end.clock_ns):
            wall = end.clock_ns - start.clock_ns
            used = end.cgroup_usage_ns - start.cgroup_usage_ns
            if wall > 0 and used >= 0:
                return round(min(max(100.0 * used / (wall * cores), 0.0), 100.0), 1)
        return None
    if None in (start.total_jiffies, end.total_jiffies, start.busy_jiffies, end.busy_jiffies):
        return None
    total = end.total_jiffies - start.total_jiffies
    busy = end.busy_jiffies - start.busy_jiffies
    if total <= 0 or busy < 0:
        return None
    return round(min(max(100.0 * busy / total, 0.0), 100.0), 1)


def _os_name(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    if line.startswith("PRETTY_NAME="):
        line = line.split("=", 1)[1].strip().strip('"').strip("'")
    return line[:120]


def parse_docker_info(text: str) -> tuple[bool, str, str, str, int | None]:
    """(running, problem, version, root_dir, containers_running) from the docker_info section."""
    lines = [line for line in text.splitlines() if line.strip()]
    rc_line = next((line for line in reversed(lines) if line.startswith("rc=")), None)
    body = [line for line in lines if not line.startswith("rc=")]
    if rc_line is None or rc_line != "rc=0" or not body:
        # Drop the half-filled format line (like "||0") docker prints before its error.
        words = [line.lstrip("|0123456789 ") if line.startswith("|") else line for line in body]
        problem = " ".join(w for w in words if w).strip()[:300]
        return False, problem, "", "", None
    fields = body[-1].split("|")
    if len(fields) != 3 or not fields[0].strip():
        return False, " ".join(body)[:300], "", "", None
    return True, "", fields[0].strip()[:40], fields[1].strip()[:255], _int(fields[2])


def parse_metrics(
    output: str,
    *,
    previous: dict | CpuCounters | None = None,
    previous_max_age_seconds: float = 900,
) -> Metrics:
    """Turn the script's output into Metrics. `previous` is the last poll's cpu_counters.

    Each part of the output is read by its own function, in this order: the CPU usage
    needs the cores and whether the device is limited by a cgroup.
    """
    s = split_sections(output)
    m = Metrics()
    _read_memory(s, m)
    _read_cpu_cores(s, m)
    _read_cpu_usage(s, m, previous=previous, previous_max_age_seconds=previous_max_age_seconds)
    _read_identity(s, m)
    _read_docker(s, m)
    _read_storage(s, m)
    return m


def _read_memory(s: dict[str, str], m: Metrics) -> None:
    """RAM: the cgroup's limit (v1, else v2) when it is below the machine's, else /proc/meminfo."""
    meminfo = parse_meminfo(s.get("meminfo", ""))
    proc_total = meminfo.get("MemTotal")
    proc_available = meminfo.get("MemAvailable")
    if proc_available is None and proc_total is not None and "MemFree" in meminfo:
        proc_available = (
            meminfo.get("MemFree", 0) + meminfo.get("Buffers", 0) + meminfo.get("Cached", 0)
        )
    limit = parse_memory_limit(s.get("cg1_mem_limit"))
    usage = _int(s.get("cg1_mem_usage"))
    stat = parse_stat_keys(s.get("cg1_mem_stat", ""))
    inactive = stat.get("total_inactive_file", stat.get("inactive_file"))
    if limit is None:
        limit = parse_memory_limit(s.get("cg2_mem_max"))
        usage = _int(s.get("cg2_mem_current"))
        inactive = parse_stat_keys(s.get("cg2_mem_stat", "")).get("inactive_file")
    if limit is not None and (proc_total is None or limit <= proc_total):
        m.memory_limited = True
        m.ram_total_bytes = limit
        if usage is not None:
            m.ram_used_bytes = max(min(usage - (inactive or 0), limit), 0)
    elif proc_total is not None:
        m.ram_total_bytes = proc_total
        if proc_available is not None:
            m.ram_used_bytes = max(proc_total - proc_available, 0)


def _read_cpu_cores(s: dict[str, str], m: Metrics) -> None:
    """CPU cores: the cgroup's quota when it is below nproc, else nproc."""
    nproc = _int(s.get("nproc"))
    quota_cpus = parse_cpu_quota(s)
    if quota_cpus is not None and (nproc is None or quota_cpus < nproc):
        m.cpu_cores = round(quota_cpus, 2)
        m.cpu_limited = True
    elif nproc is not None:
        m.cpu_cores = float(nproc)


def _read_cpu_usage(
    s: dict[str, str],
    m: Metrics,
    *,
    previous: dict | CpuCounters | None,
    previous_max_age_seconds: float,
) -> None:
    """CPU usage since the previous poll when it is recent, else over the script's window."""
    start = parse_cpu_sample(s.get("cpu_start", ""))
    mid = parse_cpu_sample(s.get("cpu_mid", ""))
    end = parse_cpu_sample(s.get("cpu_end", ""))
    use_cgroup = (m.cpu_limited or m.memory_limited) and end.cgroup_usage_ns is not None
    prev = previous if isinstance(previous, CpuCounters) else CpuCounters.from_dict(previous)
    usage_percent = None
    if prev is not None and prev.clock_ns is not None and end.clock_ns is not None:
        age = (end.clock_ns - prev.clock_ns) / 1e9
        if 0 < age <= previous_max_age_seconds:
            usage_percent = cpu_usage_percent(prev, end, cores=m.cpu_cores, use_cgroup=use_cgroup)
    if usage_percent is None and _window_seconds(start, mid) >= 0.1:
        # The script slept between start and mid: a quiet window without our own work.
        usage_percent = cpu_usage_percent(start, mid, cores=m.cpu_cores, use_cgroup=use_cgroup)
    if usage_percent is None:
        usage_percent = cpu_usage_percent(start, end, cores=m.cpu_cores, use_cgroup=use_cgroup)
    m.cpu_usage_percent = usage_percent
    m.cpu_counters = asdict(end)


def _read_identity(s: dict[str, str], m: Metrics) -> None:
    """Load, uptime, architecture, kernel and OS."""
    load = (s.get("loadavg") or "").split()
    if len(load) >= 3:
        m.load_1m, m.load_5m, m.load_15m = (_float(x) for x in load[:3])
    uptime = (s.get("uptime") or "").split()
    if uptime and _float(uptime[0]) is not None:
        m.uptime_seconds = int(float(uptime[0]))
    m.arch = (s.get("arch") or "").strip()[:20]
    m.kernel = (s.get("kernel") or "").strip()[:120]
    m.os_name = _os_name(s.get("os") or "")


def _read_docker(s: dict[str, str], m: Metrics) -> None:
    """Docker (when installed) and the compose command with its version."""
    m.docker_installed = bool((s.get("docker_path") or "").strip())
    if m.docker_installed:
        running, problem, version, root, containers = parse_docker_info(s.get("docker_info", ""))
        m.docker_running, m.docker_problem = running, problem
        m.docker_version, m.docker_root_dir, m.containers_running = version, root, containers
    compose = (s.get("compose") or "").strip().split()
    if len(compose) >= 2 and compose[0] in ("v1", "v2"):
        m.compose_command = "docker compose" if compose[0] == "v2" else "docker-compose"
        m.compose_version = compose[1].lstrip("v")[:40]


def _read_storage(s: dict[str, str], m: Metrics) -> None:
    """The storage path and, from df's last line, its size and use."""
    df_lines = (s.get("df") or "").splitlines()
    if df_lines:
        m.storage_path = df_lines[0].strip()
    if len(df_lines) >= 2:
        parts = df_lines[-1].split()
        # Filesystem 1-blocks Used Available Capacity Mounted-on
        if len(parts) >= 6 and parts[1].isdigit() and parts[2].isdigit():
            m.storage_total_bytes = int(parts[1])
            m.storage_used_bytes = int(parts[2])


# Seconds the script sleeps between two CPU samples when there is no recent previous poll.
FIRST_SAMPLE_SECONDS = 0.25
PREVIOUS_MAX_AGE_SECONDS = 900
# How often the slow path (docker CLI + compose version) runs even when the fast one works.
FULL_CHECK_EVERY_SECONDS = 3600
# How long the script may take in the kept shell: it reads files only (well under a second,
# even on a busy Pi); the full check also starts the docker CLI twice.
SCRIPT_TIMEOUT_SECONDS = 10
FULL_CHECK_TIMEOUT_SECONDS = 30


def gather(
    device_or_target,
    *,
    previous: dict | None = None,
    runner=None,
    docker_info=None,
    known_docker: dict | None = None,
    shell=None,
) -> Metrics:
    """Run the script once over the device's connection and parse it.

    1. Without a recent previous poll (`previous`, the last poll's `cpu_counters`) the
       script sleeps FIRST_SAMPLE_SECONDS between two CPU samples.
    2. Slow path (default): the script itself asks the docker CLI (`docker info`, compose
       version), which costs two CLI start-ups on the device (0.1-0.5 s).
    3. Fast path, when `docker_info` (a callable returning the Docker API's /info over the
       device's connection) and `known_docker` (compose_command, compose_version,
       docker_root_dir from a full check less than FULL_CHECK_EVERY_SECONDS ago) are given:
       the script skips the docker CLI, and Docker's figures come from the API. Any API
       failure falls back to the slow path, whose CLI output says what is wrong.
    4. Our apps' containers (`app_containers`) come with the API's answer; the slow path
       asks the API for them once more when Docker runs.

    `shell(command, timeout) -> stdout`, when given, runs the script in the device's kept shell
    (KEPT_PRELUDE, `kept_command`); otherwise `runner(args) -> (exit, stdout, stderr)`
    runs METRICS_SCRIPT as one command, by default over the device's pooled connection.
    Returns Metrics; `cpu_counters` carries `polled_at` and `full_check_at` for the next poll.
    """
    if runner is None:

        def runner(args):
            return ssh.run(device_or_target, args)

    def script(*args: str, full: bool = False) -> str:
        if shell is not None:
            # A device that stopped answering shows here: the kept shell waits for output.
            timeout = FULL_CHECK_TIMEOUT_SECONDS if full else SCRIPT_TIMEOUT_SECONDS
            return shell(kept_command(list(args), refresh_facts=full), timeout)
        _status, out, _err = runner(["sh", "-c", METRICS_SCRIPT, "sh", *args])
        return out

    now = time.time()
    state = previous or {}
    recent = bool(state) and 0 <= now - state.get("polled_at", 0) <= PREVIOUS_MAX_AGE_SECONDS
    sleep = "0" if recent else str(FIRST_SAMPLE_SECONDS)
    fast = (
        docker_info is not None
        and known_docker is not None
        and bool(known_docker.get("docker_root_dir"))
        and bool(known_docker.get("compose_command"))
        and 0 <= now - state.get("full_check_at", 0) <= FULL_CHECK_EVERY_SECONDS
    )
    if fast:
        out = script(sleep, "skip", known_docker["docker_root_dir"])
        _require_complete(out)
        try:
            info = docker_info()
        except ssh.SSHError:
            raise
        except Exception as exc:
            logger.info("Docker API did not answer (%s); asking the docker CLI", type(exc).__name__)
            info = None
        if info is not None:
            metrics = parse_metrics(
                out,
                previous=state if recent else None,
                previous_max_age_seconds=PREVIOUS_MAX_AGE_SECONDS,
            )
            if metrics.docker_installed and info.get("ServerVersion"):
                metrics.docker_running = True
                metrics.docker_version = str(info.get("ServerVersion", ""))[:40]
                metrics.docker_root_dir = str(
                    info.get("DockerRootDir") or known_docker["docker_root_dir"]
                )[:255]
                metrics.containers_running = info.get("ContainersRunning")
                metrics.app_containers = info.get("Containers")
                metrics.compose_command = known_docker["compose_command"]
                metrics.compose_version = known_docker.get("compose_version", "")
                metrics.cpu_counters["polled_at"] = now
                metrics.cpu_counters["full_check_at"] = state.get("full_check_at", now)
                return metrics
    out = script(sleep, "cli", full=True)
    _require_complete(out)
    metrics = parse_metrics(
        out, previous=state if recent else None, previous_max_age_seconds=PREVIOUS_MAX_AGE_SECONDS
    )
    metrics.cpu_counters["polled_at"] = now
    metrics.cpu_counters["full_check_at"] = now
    if docker_info is not None and metrics.docker_running:
        # The slow path (about once an hour) reads the apps' containers from the API too.
        try:
            metrics.app_containers = docker_info().get("Containers")
        except ssh.SSHError:
            raise
        except Exception as exc:
            logger.info("Docker API did not list the containers (%s)", type(exc).__name__)
    return metrics


def _require_complete(out: str) -> None:
    if "@@end" not in out:
        raise ssh.Unreachable(
            "The device stopped answering while reporting its resources.", reason="incomplete"
        )
