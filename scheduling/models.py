"""Placement's own rows: its settings, reservations, and the choices people made."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from devices.models import Device


class PlacementPolicy(models.TextChoices):
    SPREAD = "spread", "Spread: keep room on every device"
    PACK = "pack", "Pack: fill the fewest devices, leave others idle"


class PlacementSettings(models.Model):
    """The weights and policy chosen in the admin; one row at most (pk 1).

    Without a row, settings.PLACEMENT_WEIGHTS and settings.PLACEMENT_POLICY apply.
    Change it through `placement_settings_update`, which validates the weights.
    """

    SINGLETON_PK = 1

    weight_ram = models.FloatField("RAM weight", default=40, validators=[MinValueValidator(0)])
    weight_storage = models.FloatField(
        "storage weight", default=30, validators=[MinValueValidator(0)]
    )
    weight_cpu = models.FloatField("CPU weight", default=15, validators=[MinValueValidator(0)])
    weight_load = models.FloatField(
        "current load weight", default=10, validators=[MinValueValidator(0)]
    )
    weight_uptime = models.FloatField(
        "uptime/reliability weight", default=5, validators=[MinValueValidator(0)]
    )
    policy = models.CharField(
        max_length=10, choices=PlacementPolicy.choices, default=PlacementPolicy.SPREAD
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "placement settings"
        verbose_name_plural = "placement settings"

    def __str__(self) -> str:
        return (
            f"RAM {self.weight_ram:g} / storage {self.weight_storage:g} / CPU {self.weight_cpu:g}"
            f" / load {self.weight_load:g} / uptime {self.weight_uptime:g}, {self.policy}"
        )

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)


class Reservation(models.Model):
    """Resources promised to a deployment that is starting but not yet in the metrics.

    Placement subtracts active reservations from a device's free figures, so several
    deployments in a row spread out before the next poll. The deployment engine creates one
    with `reservation_create` when it picks a device and releases it with
    `reservation_release` once the app runs and a poll has seen it (or when it fails);
    `expires_at` is the safety net when nobody releases it.
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="reservations")
    label = models.CharField(max_length=100, help_text="What it is for, e.g. 'vaultwarden'.")
    ram_bytes = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    storage_bytes = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    cpu_cores = models.FloatField(default=0, validators=[MinValueValidator(0)])
    ports = models.JSONField(default=list, blank=True, help_text="Ports claimed on the device.")
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["device", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.label} on {self.device}"


class PlacementChoice(models.Model):
    """A device a person chose for an app, with what placement recommended at that moment.

    Until deployments exist this is the whole effect of "Choose this device": the choice is
    recorded and shown; the deployment wizard will read it.
    """

    app_slug = models.CharField(max_length=100, blank=True)
    app_name = models.CharField(max_length=100)
    requirements = models.JSONField(default=dict, help_text="The requirements that were scored.")
    policy = models.CharField(max_length=10, choices=PlacementPolicy.choices)
    chosen_device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    chosen_score = models.FloatField()
    chosen_eligible = models.BooleanField()
    recommended_device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recommended_score = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.message

    @property
    def is_override(self) -> bool:
        return self.recommended_device_id != self.chosen_device_id

    @property
    def message(self) -> str:
        chosen = self.chosen_device.name
        if self.recommended_device_id is None:
            return f"{chosen} chosen for {self.app_name} (no device was recommended)"
        if not self.is_override:
            return f"{chosen} chosen for {self.app_name}, the recommended device"
        return f"{chosen} chosen instead of {self.recommended_device.name} for {self.app_name}"
