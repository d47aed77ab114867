from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from homelab.services import api_token_issue


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (the last line is the token)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by.")

    def handle(self, *args, username: str, name: str, **options):
        if not get_user_model().objects.filter(username=username).exists():
            raise CommandError(
                f"There is no account named {username!r}. Create one first with "
                "`python manage.py createsuperuser`, or open the web page for the first-run setup."
            )
        _, raw = api_token_issue(username=username, name=name)
        self.stdout.write(
            "Keep this token secret; it is shown only once. Use it as 'Authorization: Bearer <token>'."
        )
        self.stdout.write(raw)
