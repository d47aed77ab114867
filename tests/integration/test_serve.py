"""`manage.py serve` as a person runs it: fresh data directory, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.served import ROOT, Served, served_env
from tests.servers import free_port


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path / "data")
    yield server
    server.stop()


def test_serve_starts_web_and_worker_on_a_fresh_data_directory(served, tmp_path):
    served.wait_for(f"Homelab is running at http://localhost:{served.port}/")
    served.wait_http()
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
    # The supervisor (serve's own process, after its hand-over) never loads Django: it stays
    # small (issue 18: at most 15 MB; it was 83 MB when it imported Django).
    rollup = Path(f"/proc/{served.process.pid}/smaps_rollup").read_text()
    pss_kb = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    assert pss_kb < 15 * 1024, f"the supervisor uses {pss_kb / 1024:.1f} MB"
    assert "homelab.supervisor" in Path(f"/proc/{served.process.pid}/cmdline").read_text()


def test_serve_restarts_a_crashed_worker_and_stops_both_on_sigterm(served):
    served.wait_http()
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
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=served_env(data),
        capture_output=True, text=True, timeout=120,
    )
    assert first.returncode == 0, first.stderr
    (data / "field_encryption.key").unlink()
    second = subprocess.run(
        [sys.executable, "manage.py", "serve", "--port", str(free_port())], cwd=ROOT, env=served_env(data),
        capture_output=True, text=True, timeout=60,
    )
    assert second.returncode != 0
    assert "field_encryption.key" in second.stderr and "is missing" in second.stderr
    assert not (data / "field_encryption.key").exists(), "a new key must never be generated"
