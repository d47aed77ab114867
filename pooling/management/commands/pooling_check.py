"""`manage.py pooling_check`: health-check every online device's shared databases."""

from django.core.management.base import BaseCommand

from devices.models import Device
from pooling.services import shared_instances_check


class Command(BaseCommand):
    help = "Restart stopped shared database servers and measure their memory."

    def handle(self, *args, **options):
        for device in Device.objects.filter(status="online"):
            for sentence in shared_instances_check(device=device):
                self.stdout.write(sentence)
