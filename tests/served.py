"""`manage.py serve` as a real child process, for the tests that need the whole product.

`Served(data_dir, env=...)` starts `manage.py serve` on a free loopback port with its own
data directory (SQLite unless `env` names HOMELAB_DATABASE_URL / HOMELAB_REDIS_URL), its
output in a log file beside the data directory. `stop()` sends SIGTERM like Ctrl-C's
supervisor would and kills the process group if anything is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def served_env(data_dir: Path, extra: dict | None = None) -> dict:
    """The environment of a control plane on `data_dir`; embedded defaults unless `extra`."""
    env = os.environ.copy()
    env["HOMELAB_DATA_DIR"] = str(data_dir)
    env["DJANGO_SETTINGS_MODULE"] = "homelab.settings"
    env.pop("HOMELAB_DATABASE_URL", None)
    env.pop("HOMELAB_REDIS_URL", None)
    env.update(extra or {})
    return env


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Served:
    def __init__(self, data_dir: Path, env: dict | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.env = served_env(data_dir, env)
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"{text!r} did not appear; output:\n{self.output()}")

    def get(
        self, path: str, session_key: str | None = None, timeout: float = 20, follow: bool = False
    ):
        """(status, headers, body) of a GET; redirects are returned unless `follow`."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if session_key:
            request.add_header("Cookie", f"sessionid={session_key}")
        opener = urllib.request.build_opener(*([] if follow else [_NoRedirect]))
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def wait_http(self, timeout: float = 60) -> None:
        """Until health answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.get("/api/v1/system/health", timeout=10)[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"the server did not answer; output:\n{self.output()}")

    def shell(self, code: str, timeout: float = 60):
        """Run `manage.py shell -c` with the same settings; return its RESULT= JSON value."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"shell failed:\n{done.stdout}\n{done.stderr}"
        for line in done.stdout.splitlines():
            if line.startswith("RESULT="):
                return json.loads(line[len("RESULT=") :])
        raise AssertionError(f"no RESULT= line:\n{done.stdout}\n{done.stderr}")

    def children(self) -> list[tuple[int, str]]:
        """(pid, command line) of serve's direct children."""
        out = subprocess.run(
            ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        rows = []
        for line in out.splitlines():
            pid, _, args = line.strip().partition(" ")
            rows.append((int(pid), args))
        return rows

    def group_pids(self) -> list[int]:
        """Live (non-zombie) processes in serve's process group: serve and all it started."""
        out = subprocess.run(
            ["ps", "-o", "pid=,stat=", "-g", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [
            int(line.split()[0]) for line in out.splitlines() if not line.split()[1].startswith("Z")
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()
