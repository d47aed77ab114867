"""Print the first-run setup path with its one-time token, or nothing once an account exists."""

from django.core.management.base import BaseCommand

from homelab.setup_token import setup_path


class Command(BaseCommand):
    help = (
        "While no account exists, print the one-time path that opens the first-run setup "
        "(/setup/?token=...); print nothing once an account exists."
    )

    def handle(self, *args, **options):
        path = setup_path()
        if path:
            self.stdout.write(path)
