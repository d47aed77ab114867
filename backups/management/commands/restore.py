"""manage.py restore SNAPSHOT: restore an app in place from one of its snapshots (the
snapshot's id in the product, or the start of its restic id), here and now."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from backups import services
from backups.models import Snapshot
from homelab.core.errors import HomelabError


class Command(BaseCommand):
    help = "Restore the app of SNAPSHOT (its id, or the first 8+ characters of its restic id)."

    def add_arguments(self, parser):
        parser.add_argument("snapshot")

    def handle(self, *args, snapshot: str, **options):
        match = Q(restic_id__startswith=snapshot.lower()) if len(snapshot) >= 8 else Q(pk=-1)
        if snapshot.isdigit():
            match |= Q(pk=int(snapshot))
        found = list(Snapshot.objects.filter(match).select_related("deployment")[:2])
        if len(found) != 1:
            raise CommandError(
                f"{'No' if not found else 'More than one'} snapshot matches {snapshot!r}; "
                "GET /api/v1/deployments/{id}/snapshots lists them."
            )
        try:
            job = services.snapshot_restore(snapshot=found[0], sync=True)
        except HomelabError as exc:
            raise CommandError(exc.message) from None
        if job.status != "succeeded":
            raise CommandError(f"The restore {job.status}: {job.error}")
        self.stdout.write(f"{found[0].deployment.app_name} restored (job {job.pk}).")
