"""The `serve` supervisor: starts and watches the web and worker processes.

Plain Python (standard library only): it never imports Django, so it costs a few MB while
it waits (issue 18). `manage.py serve`, `homelab serve` and `bin/homelab serve` all end up
here. In order:

1. The one-off preparation runs as a short-lived child (`manage.py serve --prepare`):
   migrations, the key check, recurring schedules, recovery of interrupted deployments.
   When it fails, its message is shown and serve exits with its code.
2. The web process (daphne: HTTP, WebSocket, API) and the worker (django-q2) start.
3. The address is printed, and the one-time setup link when no account exists yet
   (`manage.py setup_link`).
4. Ctrl-C or SIGTERM stops both; a process that stops on its own is restarted after a
   pause that doubles on each quick crash (2 s up to 60 s), and the log says so.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANAGE = str(ROOT / "manage.py")
STOP_TIMEOUT_SECONDS = 15
FIRST_RESTART_DELAY_SECONDS = 2.0
MAX_RESTART_DELAY_SECONDS = 60.0
# A process that ran this long before stopping was healthy: its next restart is quick again.
HEALTHY_AFTER_SECONDS = 60.0
SETUP_PATH = re.compile(r"/setup/\?token=[A-Za-z0-9_\-.:]+")
LOCAL_HOSTS = ("0.0.0.0", "::", "127.0.0.1")


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="homelab serve",
        description="Run the web server and the background worker together (migrates first).",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("HOMELAB_PORT", 8080)))
    parser.add_argument("--host", default=os.environ.get("HOMELAB_HOST", "0.0.0.0"))
    parser.add_argument("--no-worker", action="store_true", help="Run only the web process.")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be between 1 and 65535, not {args.port}.")
    return args


def child_env() -> dict[str, str]:
    env = os.environ.copy()
    env.setdefault("DJANGO_SETTINGS_MODULE", "homelab.settings")
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, MANAGE, *args]


class Child:
    def __init__(self, name: str, command: list[str]):
        self.name = name
        self.command = command
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.delay = FIRST_RESTART_DELAY_SECONDS
        self.restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=child_env(), cwd=ROOT)
        self.started = time.monotonic()
        self.restart_at = None


class Supervisor:
    """Keep a few child processes running until asked to stop."""

    def __init__(self, commands: dict[str, list[str]]):
        self.children = [Child(name, command) for name, command in commands.items()]
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def _on_stop_signal(self, signum, frame) -> None:
        self.stopping = True

    def start(self) -> None:
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        # SIGCHLD wakes the loop below when a child stops (the handler itself does nothing).
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        for child in self.children:
            child.start()

    def run(self) -> None:
        """Sleep until a signal; restart what stopped. No polling while all is well."""
        try:
            while not self.stopping:
                self._check_children()
                pending = [c.restart_at for c in self.children if c.restart_at is not None]
                timeout = max(min(pending) - time.monotonic(), 0) if pending else None
                if self.stopping:
                    break
                try:
                    ready, _, _ = select.select([self._wake_r], [], [], timeout)
                except InterruptedError:
                    continue
                if ready:
                    os.read(self._wake_r, 512)
        finally:
            self.stop_all()

    def _check_children(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at and not self.stopping:
                    child.start()
                continue
            code = child.process.poll()
            if code is None or self.stopping:
                continue
            if now - child.started >= HEALTHY_AFTER_SECONDS:
                child.delay = FIRST_RESTART_DELAY_SECONDS
            log(
                f"The {child.name} process stopped unexpectedly (exit code {code}); "
                f"restarting it in {child.delay:.0f} s. If this repeats, the lines above say why."
            )
            child.restart_at = now + child.delay
            child.delay = min(child.delay * 2, MAX_RESTART_DELAY_SECONDS)

    def stop_all(self) -> None:
        log("Stopping…")
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        # SIGINT, not SIGTERM: django-q2's cluster can hang in its SIGTERM handler.
        for process in running:
            process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log("Stopped.")


def setup_link() -> str | None:
    """The one-time setup link's path while no account exists, else None.

    `manage.py setup_link` may be missing from an older checkout: then it fails and no link
    is shown (the first page still leads to the setup).
    """
    try:
        done = subprocess.run(
            manage("setup_link"),
            env=child_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = done.stdout.strip()
    if done.returncode != 0 or not SETUP_PATH.fullmatch(path):
        return None
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Ctrl-C during the preparation reaches the child too (same process group): let the
    # child finish its own clean-up and report, instead of a traceback here.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        prepared = subprocess.run(
            manage("serve", "--prepare"), env=child_env(), cwd=ROOT, check=False
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if prepared.returncode != 0:
        return prepared.returncode

    commands = {
        "web": [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            args.host,
            "-p",
            str(args.port),
            "homelab.asgi:application",
        ],
    }
    if not args.no_worker:
        commands["worker"] = manage("qcluster")
    supervisor = Supervisor(commands)
    supervisor.start()
    link = setup_link()
    shown_host = "localhost" if args.host in LOCAL_HOSTS else args.host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    address = f"http://{shown_host}:{args.port}"
    log(f"Homelab is running at {address}/ (Ctrl-C to stop)")
    if link:
        log(f"Set up your account at {address}{link}")
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
