"""`manage.py serve` as a person runs it: fresh data directory, real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(data_dir: Path) -> dict:
    env = os.environ.copy()
    env["HOMELAB_DATA_DIR"] = str(data_dir)
    env["DJANGO_SETTINGS_MODULE"] = "homelab.settings"
    env.pop("HOMELAB_DATABASE_URL", None)
    env.pop("HOMELAB_REDIS_URL", None)
    return env


class Served:
    def __init__(self, data_dir: Path):
        self.port = _free_port()
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=_env(data_dir), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"{text!r} did not appear; output:\n{self.output()}")

    def get(self, path: str):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def children(self) -> list[tuple[int, str]]:
        out = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        rows = []
        for line in out.splitlines():
            pid, _, args = line.strip().partition(" ")
            rows.append((int(pid), args))
        return rows

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path / "data")
    yield server
    server.stop()


def _wait_http(server: Served, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _, _ = server.get("/api/v1/system/health")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the server did not answer; output:\n{server.output()}")


def test_serve_starts_web_and_worker_on_a_fresh_data_directory(served, tmp_path):
    served.wait_for(f"Homelab is running at http://localhost:{served.port}/")
    _wait_http(served)
    status, _, body = served.get("/api/v1/system/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    # The first page leads to the first-run setup, not a blank page.
    status, headers, _ = served.get("/")
    assert status == 302 and headers["Location"].endswith("/setup/")
    # Everything but health needs authentication.
    status, _, body = served.get("/api/v1/devices")
    assert status == 401
    served.wait_for("Q Cluster")
    kinds = [args for _, args in served.children()]
    assert any("daphne" in args for args in kinds), kinds
    assert any("qcluster" in args for args in kinds), kinds
    data = tmp_path / "data"
    for name in ("secret_key", "field_encryption.key"):
        assert oct((data / name).stat().st_mode & 0o777) == "0o600"
    # WAL mode is on for the embedded database.
    assert (data / "homelab.sqlite3-wal").exists()


def test_serve_restarts_a_crashed_worker_and_stops_both_on_sigterm(served):
    _wait_http(served)
    served.wait_for("Q Cluster")
    worker_pid = next(pid for pid, args in served.children() if "qcluster" in args)
    os.kill(worker_pid, signal.SIGKILL)
    served.wait_for("The worker process stopped unexpectedly")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = [pid for pid, args in served.children() if "qcluster" in args]
        if pids and pids[0] != worker_pid:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the worker was not restarted")
    children = [pid for pid, _ in served.children()]
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_serve_refuses_to_start_when_the_encryption_key_is_missing(tmp_path):
    data = tmp_path / "data"
    first = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=_env(data),
        capture_output=True, text=True, timeout=120,
    )
    assert first.returncode == 0, first.stderr
    (data / "field_encryption.key").unlink()
    second = subprocess.run(
        [sys.executable, "manage.py", "serve", "--port", str(_free_port())], cwd=ROOT, env=_env(data),
        capture_output=True, text=True, timeout=60,
    )
    assert second.returncode != 0
    assert "field_encryption.key" in second.stderr and "is missing" in second.stderr
    assert not (data / "field_encryption.key").exists(), "a new key must never be generated"
