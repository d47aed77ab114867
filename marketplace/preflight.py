"""Pre-flight: can this deployment go on this device right now?

1. From the last poll, no SSH (`preflight_problems`): the device is online and its free
   resources meet the app's minimum (placement's disqualifications, with this deployment's
   own reservation not counted twice).
2. From the database (`claimed_ports`): no other live deployment publishes the same host
   port on the device.
3. From the device, in one command (`device_state`): what listens (`ss -ltunpH`), which
   container publishes which port (`docker ps`), and whether the app folder exists. A port
   held by a container of this very deployment (a re-run) is not a problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from devices.compose import Shell, StepFailed
from marketplace.models import Deployment
from marketplace.recipes import RecipeNotFound, load_catalog
from scheduling.scoring import MIB, AppRequirements, disqualifications
from scheduling.selectors import active_reservations, snapshot_from_device

# One round trip for everything pre-flight asks the device. Fixed text: the only input,
# the app folder, arrives as a quoted positional argument ($1).
STATE_SCRIPT = (
    'ss -ltunpH; echo "@@ss $?"; '
    "docker ps --format '{{.Names}}\t{{.Label \"com.docker.compose.project\"}}\t{{.Ports}}'"
    ' 2>/dev/null; echo "@@docker $?"; '
    'if [ -n "$1" ] && [ -d "$1" ]; then echo "@@folder yes"; fi'
)


@dataclass(frozen=True)
class Listener:
    protocol: str  # tcp / udp
    port: int
    process: str


@dataclass
class DeviceState:
    """What the device said in one round trip."""

    ss_exit: int = 0
    listeners: list[Listener] = field(default_factory=list)
    # (host port, protocol) -> (container name, compose project)
    published: dict[tuple[int, str], tuple[str, str]] = field(default_factory=dict)
    folder_exists: bool = False
    ss_error: str = ""


_USERS_RE = re.compile(r'users:\(\("([^"]+)"')
_PUBLISHED_RE = re.compile(r":(\d+)->\d+(?:-\d+)?/(tcp|udp)")


def parse_ss(output: str) -> list[Listener]:
    """Lines of `ss -ltunpH` (Netid State Recv-Q Send-Q Local:Port Peer:Port [users])."""
    found = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        protocol = parts[0].lower()
        if protocol not in ("tcp", "udp"):
            continue
        local = parts[4]
        port_text = local.rsplit(":", 1)[-1]
        if not port_text.isdigit():
            continue
        users = _USERS_RE.search(line)
        found.append(Listener(protocol, int(port_text), users.group(1) if users else ""))
    return found


def parse_docker_ps(output: str) -> dict[tuple[int, str], tuple[str, str]]:
    """Lines of `docker ps --format 'name<TAB>project<TAB>ports'` -> who publishes what."""
    published: dict[tuple[int, str], tuple[str, str]] = {}
    for line in output.splitlines():
        name, _, rest = line.partition("\t")
        project, _, ports = rest.partition("\t")
        for port, protocol in _PUBLISHED_RE.findall(ports):
            published.setdefault((int(port), protocol), (name.strip(), project.strip()))
    return published


def parse_state(output: str) -> DeviceState:
    """Split STATE_SCRIPT's output at its @@ markers (without markers: all of it is ss)."""
    state = DeviceState()
    sections: dict[str, list[str]] = {"ss": [], "docker": []}
    current = "ss"
    for line in output.splitlines():
        if line.startswith("@@ss "):
            state.ss_exit = int(line.split()[1]) if line.split()[1].isdigit() else 1
            current = "docker"
        elif line.startswith("@@docker "):
            current = ""
        elif line.strip() == "@@folder yes":
            state.folder_exists = True
        elif current:
            sections[current].append(line)
    state.listeners = parse_ss("\n".join(sections["ss"]))
    state.published = parse_docker_ps("\n".join(sections["docker"]))
    return state


def device_state(shell: Shell, folder: str = "") -> DeviceState:
    exit_code, out, err = shell.run(["sh", "-c", STATE_SCRIPT, "sh", folder], timeout=30)
    if exit_code != 0:
        raise StepFailed(
            f"Could not ask {shell.device.name} what it runs (exit {exit_code}): "
            f"{err.strip()[-500:]}; check that it is a Linux machine with a POSIX shell."
        )
    state = parse_state(out)
    state.ss_error = err.strip()
    return state


def host_ports(recipe, config: dict) -> list[tuple[str, int, str]]:
    """(port name, host port, protocol) the deployment publishes."""
    chosen = (config or {}).get("ports") or {}
    return [
        (p.name, int(chosen.get(p.name, p.default_host_port)), p.protocol)
        for p in recipe.manifest.ports
    ]


def preflight_problems(deployment, recipe, device) -> list[str]:
    """What stops the app from running on the device, from its last poll (no SSH):
    placement's disqualifications with this deployment's own reservation not counted."""
    if device.status != "online":
        status = device.get_status_display().lower()
        return [
            (
                f"{device.name} is {status}; bring it back online (or choose another device) "
                "and try again"
            )
        ]
    reservations = active_reservations().filter(device_id=device.pk)
    if deployment.reservation_id:
        reservations = reservations.exclude(pk=deployment.reservation_id)
    reservations = list(reservations)
    snapshot = snapshot_from_device(
        device,
        reserved_ram_bytes=sum(r.ram_bytes for r in reservations),
        reserved_storage_bytes=sum(r.storage_bytes for r in reservations),
        reserved_cpu_cores=sum(r.cpu_cores for r in reservations),
        reservation_count=len(reservations),
    )
    return [
        f"{device.name}: {reason}"
        for reason in disqualifications(snapshot, requirements_of(recipe, ports=()))
    ]


def claimed_ports(deployment, device) -> dict[tuple[int, str], str]:
    """Host ports other live deployments on the device publish: {(port, proto): who}."""
    catalog = load_catalog()
    claimed = {}
    others = Deployment.objects.filter(device=device).live()
    if deployment.pk:
        others = others.exclude(pk=deployment.pk)
    for other in others:
        try:
            recipe = catalog.get(other.slug)
        except RecipeNotFound:
            continue
        for _, port, protocol in host_ports(recipe, other.config):
            claimed[(port, protocol)] = f"the deployment {other.app_name} ({other.instance})"
    return claimed


def port_problems(
    deployment, recipe, device, shell: Shell | None, *, state: DeviceState | None = None
) -> list[str]:
    """Each host port of the deployment that is claimed or already listening on the device.
    `state`: what the device said (asked through `shell` when not given; with neither,
    only the claims in the database are checked)."""
    problems = []
    wanted = host_ports(recipe, deployment.config)
    claimed = claimed_ports(deployment, device)
    for name, port, protocol in wanted:
        if (port, protocol) in claimed:
            problems.append(
                f"port {port}/{protocol} ({name}) on {device.name} is claimed by "
                f"{claimed[(port, protocol)]}; choose another host port in config.ports.{name}"
            )
    if state is None and shell is None:
        return problems
    if state is None:
        state = device_state(shell)
    if state.ss_exit != 0:
        hint = (
            " (install the iproute2 package, which provides `ss`)" if state.ss_exit == 127 else ""
        )
        raise StepFailed(
            f"Could not list the ports in use on {device.name}{hint}: {state.ss_error[-500:]}"
        )
    listening = {(item.port, item.protocol): item.process for item in state.listeners}
    for name, port, protocol in wanted:
        if (port, protocol) in claimed or (port, protocol) not in listening:
            continue
        holder = _port_holder(state, deployment, port, protocol, listening[(port, protocol)])
        if holder is None:  # our own containers (a re-run of the same deployment)
            continue
        problems.append(
            f"port {port}/{protocol} ({name}) on {device.name} is already in use by {holder}; "
            f"stop that or choose another host port in config.ports.{name}"
        )
    return problems


def _port_holder(state: DeviceState, deployment, port: int, protocol: str, process: str):
    """Who holds a port: a container name when Docker publishes it, else the process.
    None when it is a container of this very deployment."""
    container = state.published.get((port, protocol))
    if container is not None:
        name, project = container
        if project and project == deployment.project:
            return None
        return f"container {name}"
    return f"process {process}" if process else "another program"


def requirements_of(recipe, *, ports: Iterable[int] | None = None):
    """Placement requirements from a recipe's manifest (ports: the host ports to claim,
    default the recipe's default host ports)."""
    r = recipe.manifest.requirements
    return AppRequirements(
        name=recipe.name,
        slug=recipe.slug,
        min_ram_bytes=r.ram_min_mb * MIB,
        recommended_ram_bytes=r.ram_recommended_mb * MIB,
        min_storage_bytes=r.storage_min_mb * MIB,
        recommended_storage_bytes=r.storage_recommended_mb * MIB,
        min_cpu_cores=float(r.cpu_cores_min),
        recommended_cpu_cores=float(r.cpu_cores_recommended),
        architectures=frozenset(recipe.manifest.architectures),
        ports=frozenset(
            (p.default_host_port for p in recipe.manifest.ports) if ports is None else ports
        ),
        always_on=recipe.manifest.always_on,
    )
