"""The device lab: real machines for tests and demos, as containers on one host.

Each device is a container with its own sshd and its own dockerd, its own address on the
``homelab-lab`` bridge and its own memory/CPU limits. A local registry on the host
(Debian's ``docker-registry``, port 5000) is every device's Docker Hub mirror.

Network rule: the lab only ever talks to loopback and to its own bridge addresses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import build
from . import restic as restic_image
from .s3 import S3Server

NETWORK = "homelab-lab"
BRIDGE_NAME = "br-homelab-lab"
SUBNET = os.environ.get("HOMELAB_LAB_SUBNET", "172.30.57.0/24")
REGISTRY_PORT = int(os.environ.get("HOMELAB_LAB_REGISTRY_PORT", "5000"))
LABEL = build.LABEL  # "homelab-lab"
SSH_PORT = 22
USERNAME = "root"
READY_TIMEOUT = float(os.environ.get("HOMELAB_LAB_READY_TIMEOUT", "120"))

# Docker Hub names resolve to loopback inside devices: a pull that the mirror cannot
# serve fails at once instead of going to the Internet.
_HUB_HOSTS = (
    "registry-1.docker.io",
    "index.docker.io",
    "auth.docker.io",
    "docker.io",
    "production.cloudflare.docker.com",
)

GiB = 1024**3


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    hostname: str
    memory: str  # docker --memory
    memory_bytes: int
    cpus: float
    host_index: int  # last part of the address within the lab subnet
    docker: bool = True


DEVICE_SPECS: tuple[DeviceSpec, ...] = (
    DeviceSpec("lab-pi", "pi-4", "2g", 2 * GiB, 1.0, 10),
    DeviceSpec("lab-server-1", "server-1", "4g", 4 * GiB, 2.0, 11),
    DeviceSpec("lab-server-2", "server-2", "8g", 8 * GiB, 2.0, 12),
)
NO_DOCKER_SPEC = DeviceSpec("lab-nodocker", "nodocker", "1g", 1 * GiB, 1.0, 13, docker=False)


@dataclass
class LabDevice:
    name: str  # "lab-pi"
    container: str  # docker container name
    address: str  # bridge IP
    port: int  # 22
    username: str  # "root"
    password: str  # the root password
    memory_bytes: int  # the --memory limit
    cpus: float
    hostname: str = ""
    docker: bool = True  # False for lab-nodocker

    @property
    def ram_label(self) -> str:
        return f"{self.memory_bytes / GiB:g} GiB"


class LabError(RuntimeError):
    pass


# ----------------------------------------------------------------------------- helpers
def _docker(*args: str, check: bool = True, timeout: float | None = 120, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    res = subprocess.run(["docker", *args], timeout=timeout, check=False, **kw)
    if check and res.returncode != 0:
        raise LabError(f"docker {' '.join(args)} failed: {(res.stderr or '').strip()}")
    return res


def _state_dir() -> Path:
    d = build.cache_dir() / "state"
    d.mkdir(parents=True, exist_ok=True)
    return d


def session_marker() -> Path:
    """Present while the lab was brought up by a pytest session (which may tear it down);
    `python -m tests.lab up` removes it so that a lab started by hand is kept."""
    return _state_dir() / "started-by-pytest"


@contextlib.contextmanager
def _lock():
    """Serialise up/down/build between processes (e.g. two pytest sessions)."""
    with open(_state_dir() / "lab.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ssh_answers(address: str, port: int = SSH_PORT, timeout: float = 2.0) -> bool:
    """True when an SSH server greets on address:port."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _registry_answers(port: int = REGISTRY_PORT) -> bool | None:
    """True: a registry answers on 127.0.0.1:port; False: nothing; None: something else."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
            return r.headers.get("Docker-Distribution-Api-Version", "").startswith("registry/")
    except urllib.error.HTTPError as e:
        return (
            True
            if e.headers.get("Docker-Distribution-Api-Version", "").startswith("registry/")
            else None
        )
    except (urllib.error.URLError, OSError):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return None
        return False


def lab_available() -> tuple[bool, str]:
    """Can this machine run the lab? (ok, reason-if-not)."""
    if shutil.which("docker") is None:
        return False, "the docker CLI is not installed (apt-get install -y docker.io)"
    try:
        res = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "the Docker engine does not answer (docker version timed out)"
    if res.returncode != 0:
        return False, f"the Docker engine is not reachable: {res.stderr.strip()[:200]}"
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return False, "this host uses cgroup v2; the lab's device init supports cgroup v1 only"
    if not build.image_exists(build.device_image()) and shutil.which("debootstrap") is None:
        return False, "debootstrap is not installed (apt-get install -y debootstrap)"
    if shutil.which("docker-registry") is None and _registry_answers() is not True:
        return False, "docker-registry is not installed (apt-get install -y docker-registry)"
    return True, ""


# ------------------------------------------------------------------------------ registry
class Registry:
    """Debian's docker-registry on 0.0.0.0:PORT, data under the lab cache."""

    def __init__(self, port: int = REGISTRY_PORT):
        self.port = port
        self.dir = build.cache_dir() / "registry"
        self.config = self.dir / "config.yml"
        self.pidfile = self.dir / "registry.pid"
        self.logfile = self.dir / "registry.log"

    def _our_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            return None
        return (
            pid if b"docker-registry" in cmdline and str(self.config).encode() in cmdline else None
        )

    @property
    def started_by_lab(self) -> bool:
        return self._our_pid() is not None

    def ensure(self) -> None:
        state = _registry_answers(self.port)
        if state is True:
            return
        if state is None:
            raise LabError(
                f"port {self.port} is in use by something that is not a registry; free it "
                "or set HOMELAB_LAB_REGISTRY_PORT"
            )
        if shutil.which("docker-registry") is None:
            raise LabError("docker-registry is not installed (apt-get install -y docker-registry)")
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 0.0.0.0:{self.port}\n"
        )
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the CLI / pytest process
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if _registry_answers(self.port) is True:
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise LabError(f"the registry did not start; see {self.logfile}")

    def stop(self) -> bool:
        """Stop the registry if the lab started it. Returns True if it stopped one."""
        pid = self._our_pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        return True

    @staticmethod
    def repository(name: str) -> str:
        """'busybox:1.36' -> 'library/busybox:1.36'; 'vaultwarden/server:1' unchanged."""
        repo = name.split("@")[0]
        path = repo.rsplit(":", 1)[0] if ":" in repo.split("/")[-1] else repo
        if "/" not in path:
            name = "library/" + name
        return name

    def has(self, name: str) -> bool:
        ref = self.repository(name)
        repo, tag = ref.rsplit(":", 1) if ":" in ref.split("/")[-1] else (ref, "latest")
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v2/{repo}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def push(self, local_image: str, name: str) -> str:
        """Push a local image into the registry under a real name (e.g. 'busybox:1.36',
        'vaultwarden/server:1.30'); devices then pull it by that name via the mirror."""
        target = f"localhost:{self.port}/{self.repository(name)}"
        _docker("tag", local_image, target)
        try:
            _docker("push", target, timeout=600)
        finally:
            _docker("rmi", target, check=False)  # only the extra tag; the image stays
        return target


# ----------------------------------------------------------------------------------- lab
class Lab:
    """The lab of devices. Safe to construct anywhere; nothing happens until up()."""

    def __init__(self, password: str | None = None):
        net = ipaddress.ip_network(SUBNET)
        self.network_cidr: str = str(net)
        self.gateway: str = str(net.network_address + 1)
        self.registry = Registry()
        self.registry_address: str = f"{self.gateway}:{self.registry.port}"
        # S3-compatible storage for backups: endpoint, access_key, secret_key, region
        self.s3 = S3Server(self.gateway)
        self._password_arg = password or os.environ.get("HOMELAB_LAB_PASSWORD")
        self.password: str = self._password_arg or self._stored_password()
        self.devices: list[LabDevice] = [self._device_for(s) for s in DEVICE_SPECS]
        self.extra_devices: list[LabDevice] = []
        self._changed: dict[str, set[str]] = {}
        self.image: str | None = None

    # ----- model
    def _stored_password(self) -> str:
        f = _state_dir() / "root-password"
        if f.exists():
            return f.read_text().strip()
        pw = "lab-" + secrets.token_urlsafe(9)
        f.write_text(pw + "\n")
        f.chmod(0o600)
        return pw

    def _address(self, spec: DeviceSpec) -> str:
        return str(ipaddress.ip_network(self.network_cidr).network_address + spec.host_index)

    def _device_for(self, spec: DeviceSpec) -> LabDevice:
        return LabDevice(
            name=spec.name,
            container=spec.name,
            address=self._address(spec),
            port=SSH_PORT,
            username=USERNAME,
            password=self.password,
            memory_bytes=spec.memory_bytes,
            cpus=spec.cpus,
            hostname=spec.hostname,
            docker=spec.docker,
        )

    @staticmethod
    def _spec(name: str) -> DeviceSpec:
        for s in (*DEVICE_SPECS, NO_DOCKER_SPEC):
            if s.name == name:
                return s
        raise KeyError(f"no lab device named {name!r}")

    def device(self, name: str) -> LabDevice:
        for d in (*self.devices, *self.extra_devices):
            if d.name == name:
                return d
        if name == NO_DOCKER_SPEC.name and not self.extra_devices:
            self.extra_devices = self._existing_extra()  # created by another process
            if self.extra_devices:
                return self.extra_devices[0]
        raise KeyError(f"no lab device named {name!r} (is it created?)")

    def volume(self, name: str) -> str:
        return f"{name}-docker"

    # ----- inspection
    def _inspect(self, container: str) -> dict | None:
        res = _docker("container", "inspect", container, check=False)
        if res.returncode != 0:
            return None
        return json.loads(res.stdout)[0]

    def _container_password(self, info: dict) -> str | None:
        for e in info["Config"].get("Env") or []:
            if e.startswith("LAB_ROOT_PASSWORD="):
                return e.split("=", 1)[1]
        return None

    def is_running(self) -> bool:
        """All three standard devices run (whatever image)."""
        for d in self.devices:
            info = self._inspect(d.container)
            if not info or not info["State"]["Running"]:
                return False
        return True

    def status(self) -> list[dict]:
        self.image = self.image or build.device_image()
        rows = []
        for d in (*self.devices, *self._existing_extra()):
            info = self._inspect(d.container)
            state = "missing" if info is None else info["State"]["Status"]
            running = bool(info and info["State"]["Running"])
            rows.append(
                {
                    "device": d,
                    "state": state,
                    "current_image": bool(
                        info and self.image and info["Config"]["Image"] == self.image
                    ),
                    "ssh": running and _ssh_answers(d.address),
                    "docker": running and d.docker and self._docker_answers(d.container),
                }
            )
        return rows

    def _existing_extra(self) -> list[LabDevice]:
        if self.extra_devices:
            return self.extra_devices
        if self._inspect(NO_DOCKER_SPEC.name):
            return [self._device_for(NO_DOCKER_SPEC)]
        return []

    def _docker_answers(self, container: str) -> bool:
        try:
            res = _docker(
                "exec",
                container,
                "docker",
                "info",
                "--format",
                "{{.ServerVersion}}",
                check=False,
                timeout=20,
            )
        except subprocess.TimeoutExpired:
            return False
        return res.returncode == 0 and bool(res.stdout.strip())

    # ----- network
    def _ensure_network(self) -> None:
        want = ipaddress.ip_network(self.network_cidr)
        res = _docker("network", "inspect", NETWORK, check=False)
        if res.returncode == 0:
            cfg = json.loads(res.stdout)[0]["IPAM"]["Config"] or [{}]
            have = cfg[0].get("Subnet")
            if have == str(want):
                return
            raise LabError(
                f"network {NETWORK} exists with subnet {have}, not {want}; "
                "run `python -m tests.lab down` first"
            )
        # refuse to overlap any existing docker network or host route
        ids = _docker("network", "ls", "-q").stdout.split()
        if ids:
            nets = json.loads(_docker("network", "inspect", *ids).stdout)
            for n in nets:
                for c in n["IPAM"]["Config"] or []:
                    sub = c.get("Subnet")
                    if (
                        sub
                        and ":" not in sub
                        and ipaddress.ip_network(sub, strict=False).overlaps(want)
                    ):
                        raise LabError(
                            f"lab subnet {want} overlaps docker network {n['Name']} ({sub}); "
                            "set HOMELAB_LAB_SUBNET to a free /24"
                        )
        routes = subprocess.run(["ip", "-j", "route"], capture_output=True, text=True, check=False)
        if routes.returncode == 0:
            for r in json.loads(routes.stdout or "[]"):
                dst = r.get("dst")
                if dst and dst != "default":
                    with contextlib.suppress(ValueError):
                        if ipaddress.ip_network(dst, strict=False).overlaps(want):
                            raise LabError(
                                f"lab subnet {want} overlaps host route {dst} "
                                f"({r.get('dev')}); set HOMELAB_LAB_SUBNET to a free /24"
                            )
        _docker(
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            str(want),
            "--gateway",
            self.gateway,
            "--label",
            f"{LABEL}=network",
            "-o",
            f"com.docker.network.bridge.name={BRIDGE_NAME}",
            NETWORK,
        )

    # ----- devices
    def _config_hash(self, spec: DeviceSpec) -> str:
        return hashlib.sha256(
            json.dumps(
                [self.image, spec.__dict__, self.network_cidr, self.registry_address]
            ).encode()
        ).hexdigest()[:12]

    def _run_device(self, spec: DeviceSpec, password: str) -> None:
        vol = self.volume(spec.name)
        _docker("volume", "create", "--label", f"{LABEL}=volume", vol)
        args = [
            "run",
            "-d",
            "--name",
            spec.name,
            "--hostname",
            spec.hostname,
            "--init",
            "--cap-add",
            "ALL",
            "--cap-drop",
            "SYS_RESOURCE",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--device-cgroup-rule",
            "a *:* rwm",
            "--cgroupns",
            "private",
            "--memory",
            spec.memory,
            "--memory-swap",
            spec.memory,
            "--cpus",
            f"{spec.cpus:g}",
            "--network",
            NETWORK,
            "--ip",
            self._address(spec),
            "--label",
            f"{LABEL}=device",
            "--label",
            f"{LABEL}.device={spec.name}",
            "--label",
            f"{LABEL}.config={self._config_hash(spec)}",
            "-e",
            f"LAB_ROOT_PASSWORD={password}",
            "-e",
            f"LAB_GATEWAY={self.gateway}",
            "-e",
            f"LAB_REGISTRY_PORT={self.registry.port}",
            "-v",
            f"{vol}:/var/lib/docker",
            "--stop-timeout",
            "20",
        ]
        for h in _HUB_HOSTS:
            args += ["--add-host", f"{h}:127.0.0.1"]
        if not spec.docker:
            args += ["-e", "LAB_NO_DOCKER=1"]
        _docker(*args, self.image)

    def _ensure_device(self, spec: DeviceSpec, dev: LabDevice) -> None:
        info = self._inspect(spec.name)
        if info is not None:
            same = info["Config"]["Labels"].get(f"{LABEL}.config") == self._config_hash(spec)
            if same:
                pw = self._container_password(info)
                if pw and pw != self.password and not self._password_arg:
                    # devices created with another password (e.g. another cache dir): adopt it
                    self.password = pw
                    for d in (*self.devices, *self.extra_devices):
                        d.password = pw
                dev.password = pw or dev.password
                if not info["State"]["Running"]:
                    _docker("start", spec.name)
                return
            build.log(f"{spec.name}: image or settings changed, recreating")
            _docker("rm", "-f", spec.name)
        dev.password = self.password
        self._run_device(spec, self.password)

    def _wait_ready(self, devices: list[LabDevice], timeout: float = READY_TIMEOUT) -> None:
        pending = {d.name: d for d in devices}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for name, d in list(pending.items()):
                info = self._inspect(d.container)
                if info is None or info["State"]["Status"] in ("exited", "dead"):
                    logs = _docker("logs", "--tail", "30", d.container, check=False)
                    raise LabError(
                        f"{name} is not running ({info and info['State']['Status']}); "
                        f"last log lines:\n{logs.stdout}{logs.stderr}"
                    )
                if _ssh_answers(d.address) and (not d.docker or self._docker_answers(d.container)):
                    del pending[name]
            if pending:
                time.sleep(0.3)
        if pending:
            raise LabError(
                f"devices not ready after {timeout:.0f} s: {', '.join(pending)} "
                "(sshd or dockerd inside did not answer; see docker logs DEVICE)"
            )

    # ----- public API
    def build(self, force: bool = False) -> str:
        with _lock():
            self.image = build.build_device(force=force)
            build.build_busybox()
            return self.image

    def up(self) -> None:
        """Build (cached), start the registry, the network and the devices; wait until
        each device's sshd and dockerd answer. Idempotent and fast when already up."""
        with _lock():
            self.image = build.build_device()
            busybox = build.build_busybox()
            self._ensure_network()
            self.registry.ensure()
            self._seed_registry(busybox)
            self._seed_restic()
            self.s3.ensure()
            for spec, dev in zip(DEVICE_SPECS, self.devices, strict=True):
                self._ensure_device(spec, dev)
            self._wait_ready(self.devices)
            for dev in self.devices:
                self._ensure_containers_start(dev)
            self.extra_devices = self._existing_extra()

    def _ensure_containers_start(self, dev: LabDevice) -> None:
        """Start one throw-away container inside the device. Seen once here (cgroup v1): a
        freshly created device whose nested dockerd answers but cannot start any container
        ("unable to apply cgroup configuration ... cgroup.procs: no such file"); a restart
        of the device cures it, so the lab restarts it once instead of failing every test."""
        if not dev.docker:
            return
        probe = ["docker", "run", "--rm", "--network", "none", build.BUSYBOX_NAME, "true"]
        for attempt in range(2):
            done = self.exec(dev.name, probe, timeout=120)
            if done.returncode == 0:
                return
            if attempt == 0:
                build.log(f"{dev.name}: a container would not start, restarting the device "
                          f"({(done.stderr or done.stdout).strip()[-200:]})")  # fmt: skip
                self.restart_device(dev.name)
        raise LabError(
            f"{dev.name}: its Docker cannot start a container even after a restart: "
            f"{(done.stderr or done.stdout).strip()[-500:]}"
        )

    def _seed_registry(self, busybox: str) -> None:
        # The registry may have been started from another checkout's cache: keep our marker anyway.
        self.registry.dir.mkdir(parents=True, exist_ok=True)
        marker = self.registry.dir / "seeded-busybox"
        if (
            marker.exists()
            and marker.read_text().strip() == busybox
            and self.registry.has(build.BUSYBOX_NAME)
        ):
            return
        self.registry.push(busybox, build.BUSYBOX_NAME)
        marker.write_text(busybox + "\n")

    def _seed_restic(self) -> None:
        """The restic stand-in under the name the product pins for the official image."""
        from backups.restic import IMAGE

        restic_image.ensure_pushed(self.registry, IMAGE)

    def push_image(self, local_image: str, name: str) -> str:
        """Make `name` (e.g. 'vaultwarden/server:1.30') pullable inside every device."""
        self.registry.ensure()
        return self.registry.push(local_image, name)

    def add_device_without_docker(self) -> LabDevice:
        """Create (or reuse) lab-nodocker: same image, sshd only, no docker binaries."""
        with _lock():
            if self.image is None:
                self.image = build.build_device()
            self._ensure_network()
            dev = (
                self._existing_extra()[0]
                if self._existing_extra()
                else self._device_for(NO_DOCKER_SPEC)
            )
            self._ensure_device(NO_DOCKER_SPEC, dev)
            self._wait_ready([dev])
            self.extra_devices = [dev]
            return dev

    def remove_device(self, name: str) -> None:
        _docker("rm", "-f", "-v", name, check=False)
        _docker("volume", "rm", "-f", self.volume(name), check=False)
        self.extra_devices = [d for d in self.extra_devices if d.name != name]

    def down(self) -> None:
        """Remove every lab device, its volume, the network, and the registry the lab
        started. Cached images and downloads stay (see README)."""
        with _lock():
            ids = _docker("ps", "-aq", "--filter", f"label={LABEL}=device").stdout.split()
            if ids:
                _docker("rm", "-f", "-v", *ids, timeout=180)
            vols = _docker("volume", "ls", "-q", "--filter", f"label={LABEL}=volume").stdout.split()
            if vols:
                _docker("volume", "rm", "-f", *vols)
            if _docker("network", "inspect", NETWORK, check=False).returncode == 0:
                _docker("network", "rm", NETWORK)
            self.s3.stop()
            self.registry.stop()
            self.extra_devices = []

    def stop_device(self, name: str) -> None:
        dev = self.device(name)
        _docker("stop", dev.container, timeout=120)
        self._changed.setdefault(name, set()).add("stopped")

    def start_device(self, name: str, wait_docker: bool = True) -> None:
        """docker start; waits until sshd answers again (and dockerd, unless told not to)."""
        dev = self.device(name)
        _docker("start", dev.container)
        probe = LabDevice(**{**dev.__dict__, "docker": dev.docker and wait_docker})
        self._wait_ready([probe])
        self._changed.get(name, set()).discard("stopped")

    def restart_device(self, name: str) -> None:
        self.stop_device(name)
        self.start_device(name)

    def is_device_running(self, name: str) -> bool:
        info = self._inspect(self.device(name).container)
        return bool(info and info["State"]["Running"])

    def exec(
        self,
        name: str,
        cmd: list[str],
        input: str | None = None,
        timeout: float | None = 120,
        check: bool = False,
    ) -> subprocess.CompletedProcess:
        """docker exec into the device (output captured as text)."""
        dev = self.device(name)
        args = ["exec", *(["-i"] if input is not None else []), dev.container, *cmd]
        return _docker(*args, input=input, timeout=timeout, check=check)

    def host_keys(self, name: str) -> dict[str, str]:
        """The device's SSH host public keys: {'ssh-ed25519': 'AAAA...', ...}."""
        out = self.exec(name, ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"], check=True).stdout
        keys = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                keys[parts[0]] = parts[1]
        return keys

    def authorize_key(self, name: str, public_key: str) -> None:
        """Add an OpenSSH public key line to root's authorized_keys (idempotent)."""
        line = public_key.strip()
        if not line or "\n" in line:
            raise ValueError("one OpenSSH public key line expected")
        self.exec(
            name,
            [
                "sh",
                "-ec",
                (
                    'f=/root/.ssh/authorized_keys; mkdir -p /root/.ssh; touch "$f"; '
                    'chmod 700 /root/.ssh; chmod 600 "$f"; '
                    'k=$(cat); grep -qxF "$k" "$f" || printf "%s\\n" "$k" >> "$f"'
                ),
            ],
            input=line,
            check=True,
        )

    def _hup_sshd(self, name: str) -> None:
        dev = self.device(name)
        self.exec(name, ["sh", "-c", "kill -HUP $(cat /run/sshd.pid)"], check=True)
        deadline = time.monotonic() + 20
        time.sleep(0.2)
        while not _ssh_answers(dev.address):
            if time.monotonic() > deadline:
                raise LabError(f"{name}: sshd did not come back after reload")
            time.sleep(0.1)

    def replace_host_key(self, name: str) -> None:
        """New SSH host keys on the device (sshd reloaded): a pinned key no longer matches.
        The original keys are kept in the device; restore_host_key() puts them back."""
        self.exec(
            name,
            [
                "sh",
                "-ec",
                (
                    "mkdir -p /etc/ssh/lab-original-keys; "
                    "[ -e /etc/ssh/lab-original-keys/.saved ] || "
                    "{ cp -a /etc/ssh/ssh_host_* /etc/ssh/lab-original-keys/; "
                    "touch /etc/ssh/lab-original-keys/.saved; }; "
                    "rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null"
                ),
            ],
            check=True,
        )
        self._hup_sshd(name)
        self._changed.setdefault(name, set()).add("host_key")

    def restore_host_key(self, name: str) -> None:
        res = self.exec(
            name,
            [
                "sh",
                "-ec",
                (
                    "[ -e /etc/ssh/lab-original-keys/.saved ] || exit 3; "
                    "rm -f /etc/ssh/ssh_host_*; cp -a /etc/ssh/lab-original-keys/ssh_host_* /etc/ssh/; "
                    "rm -rf /etc/ssh/lab-original-keys"
                ),
            ],
        )
        if res.returncode == 0:
            self._hup_sshd(name)
        self._changed.get(name, set()).discard("host_key")

    def set_password(self, name: str, pw: str) -> None:
        if "\n" in pw or "\r" in pw or not pw:
            raise ValueError("a password must be non-empty and on one line")
        self.exec(name, ["chpasswd"], input=f"root:{pw}\n", check=True)
        dev = self.device(name)
        dev.password = pw
        if pw != self.password:
            self._changed.setdefault(name, set()).add("password")
        else:
            self._changed.get(name, set()).discard("password")

    def restore(self, name: str | None = None) -> None:
        """Undo what tests did to a device (all devices when name is None): start it,
        give back the lab password and the original host keys."""
        names = [name] if name else [d.name for d in (*self.devices, *self.extra_devices)]
        for n in names:
            dev = self.device(n)
            if not self.is_device_running(n):
                self.start_device(n)
            changed = self._changed.get(n, set())
            if "host_key" in changed:
                self.restore_host_key(n)
            if "password" in changed or dev.password != self.password:
                self.set_password(n, self.password)
            self._changed.pop(n, None)


__all__ = [
    "DEVICE_SPECS",
    "NO_DOCKER_SPEC",
    "Lab",
    "LabDevice",
    "LabError",
    "Registry",
    "lab_available",
]
