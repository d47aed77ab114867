"""`python manage.py serve`: the one command that runs the whole product.

The work is done by homelab.supervisor (plain Python, no Django: it stays small while it
watches the web and worker processes). This command hands over to it at once with
`os.execv`, so nothing of Django stays in memory. The supervisor runs
`manage.py serve --prepare` once as a short-lived child:

1. Check the keys match the data (settings already created them on a first run).
2. Apply migrations, recover deployments a stop interrupted, make sure the device polling
   schedule exists.
"""

from __future__ import annotations

import os
import sys

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
        parser.add_argument(
            "--prepare", action="store_true",
            help="Only the one-off preparation (migrations, key check, schedules), then exit.",
        )

    def handle(self, *args, port: int, host: str, no_worker: bool, prepare: bool, **options):
        if not 1 <= port <= 65535:
            raise CommandError(f"--port must be between 1 and 65535, not {port}.")
        if prepare:
            self._prepare()
            return
        argv = [sys.executable, "-m", "homelab.supervisor", "--port", str(port), "--host", host]
        if no_worker:
            argv.append("--no-worker")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, argv)

    def _prepare(self) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        try:
            prepare_control_plane()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Data directory: {settings.DATA_DIR}")
