"""manage.py export_homelab [FILE]: the homelab's definitions as YAML (to FILE or stdout)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from fleet.services import homelab_export_yaml


class Command(BaseCommand):
    help = "Write the homelab's devices, apps and shared databases (no keys, no secrets) as YAML."

    def add_arguments(self, parser):
        parser.add_argument(
            "file", nargs="?", help="Where to write it; without it, standard output."
        )

    def handle(self, *args, file=None, **options):
        text = homelab_export_yaml()
        if not file:
            self.stdout.write(text, ending="")
            return
        Path(file).write_text(text, encoding="utf-8")
        self.stderr.write(f"Wrote the homelab's definitions to {file}.")
