"""manage.py backup_now [APP]: back up one app (its id, project or name) or every installed
app now, here and now (the same job the worker runs), and say how each went."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from backups import services
from homelab.core.errors import HomelabError
from marketplace.models import Deployment


class Command(BaseCommand):
    help = "Back up APP (id, project or name), or every installed app, to every destination now."

    def add_arguments(self, parser):
        parser.add_argument("app", nargs="?", default="")

    def handle(self, *args, app: str = "", **options):
        apps = Deployment.objects.installed().select_related("device")
        if app:
            match = Q(project=app) | Q(app_name=app) | Q(slug=app)
            if app.isdigit():
                match |= Q(pk=int(app))
            apps = apps.filter(match)
            if not apps:
                raise CommandError(
                    f"No installed app is called {app!r}; give its id, project or name "
                    "(GET /api/v1/deployments lists them)."
                )
        failed = 0
        for deployment in apps:
            try:
                job = services.deployment_backup(deployment=deployment, sync=True)
            except HomelabError as exc:
                raise CommandError(exc.message) from None
            if job.status == "succeeded":
                self.stdout.write(f"{deployment.app_name}: backed up (job {job.pk}).")
            else:
                failed += 1
                self.stderr.write(f"{deployment.app_name}: {job.status}: {job.error}")
        if failed:
            raise CommandError(f"{failed} backup(s) did not succeed; see above.")
