"""manage.py import_homelab FILE: record the devices to add and apps to deploy of an export."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fleet.services import MAX_FILE_BYTES, ImportRefused, homelab_import


class Command(BaseCommand):
    help = "Import a file that export_homelab wrote; nothing is saved if any field is wrong."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The YAML file an export gave.")

    def handle(self, *args, file: str, **options):
        try:
            with Path(file).open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}. Check the path.") from None
        try:
            result = homelab_import(text=data)
        except ImportRefused as refused:
            lines = [f"Nothing was imported. {refused.message}"]
            lines += [f"  {field}: {message}" for field, message in refused.problems[1:]]
            raise CommandError("\n".join([*lines, *refused.fixes])) from None
        self.stdout.write("Imported.")
        for step in result.to_do():
            self.stdout.write(f"- {step}")
