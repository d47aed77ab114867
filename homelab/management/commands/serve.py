"""`python manage.py serve`: the one command that runs the whole product.

1. Check the keys match the data (settings already created them on a first run).
2. Apply migrations and make sure the device polling schedule exists.
3. Start the web process (daphne: HTTP, WebSocket, API) and the worker (django-q2).
4. Supervise both: Ctrl-C or SIGTERM stops both; a process that dies is restarted and
   the log says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from homelab.startup import prepare_control_plane


class Command(BaseCommand):
    help = "Run the web server and the background worker together (migrates first)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("HOMELAB_PORT", 8080)))
        parser.add_argument("--host", default=os.environ.get("HOMELAB_HOST", "0.0.0.0"))
        parser.add_argument("--no-worker", action="store_true", help="Run only the web process.")

    def handle(self, *args, port: int, host: str, no_worker: bool, **options):
        if not 1 <= port <= 65535:
            raise CommandError(f"--port must be between 1 and 65535, not {port}.")
        call_command("migrate", interactive=False, verbosity=0)
        try:
            prepare_control_plane()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None

        python = sys.executable
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        commands = {
            "web": [python, "-m", "daphne", "-b", host, "-p", str(port), "homelab.asgi:application"],
        }
        if not no_worker:
            commands["worker"] = [python, manage, "qcluster"]

        supervisor = Supervisor(commands, log=self._log)
        shown_host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host
        self._log(f"Data directory: {settings.DATA_DIR}")
        self._log(f"Homelab is running at http://{shown_host}:{port}/ (Ctrl-C to stop)")
        supervisor.run()

    def _log(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()


class Supervisor:
    """Keep a few child processes running until asked to stop."""

    RESTART_DELAY_SECONDS = 2.0

    def __init__(self, commands: dict[str, list[str]], *, log):
        self.commands = commands
        self.log = log
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def _start(self, name: str) -> None:
        self.processes[name] = subprocess.Popen(self.commands[name], env=os.environ.copy())

    def _request_stop(self, signum, frame) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        for name in self.commands:
            self._start(name)
        try:
            while not self.stopping:
                time.sleep(0.5)
                for name, process in list(self.processes.items()):
                    code = process.poll()
                    if code is not None and not self.stopping:
                        self.log(f"The {name} process stopped unexpectedly (exit code {code}); restarting it.")
                        time.sleep(self.RESTART_DELAY_SECONDS)
                        self._start(name)
        finally:
            self._stop_all()

    def _stop_all(self) -> None:
        self.log("Stopping…")
        # SIGINT, not SIGTERM: django-q2's cluster can hang in its SIGTERM handler.
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log("Stopped.")
