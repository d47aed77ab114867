"""What an import asked for and could not create by itself.

A device needs its login once (a password or key to install the product's own key), so an
imported device waits here until a person adds it; an app can only be deployed on a device
that answers, so an imported app waits here as a definition "to deploy". Both are listed on
Settings -> Export/Import with a link to do it; none of them holds a secret.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from devices.models import (
    DeviceType,
    address_validator,
    label_validator,
    name_validator,
    username_validator,
)
from marketplace.models import instance_validator, slug_validator


class DeviceToAdd(models.Model):
    """A device from an imported file, waiting for a person to add it with its login."""

    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    address = models.CharField(max_length=253, validators=[address_validator])
    port = models.PositiveIntegerField(
        default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    username = models.CharField(max_length=32, validators=[username_validator])
    device_type = models.CharField(
        max_length=10, choices=DeviceType.choices, default=DeviceType.SERVER
    )
    location = models.CharField(max_length=63, blank=True, validators=[label_validator])
    always_on = models.BooleanField(default=True)
    imported = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "device to add"
        verbose_name_plural = "devices to add"

    def __str__(self) -> str:
        return self.name


class AppToDeploy(models.Model):
    """An app from an imported file, waiting to be deployed (its secrets are new ones)."""

    slug = models.CharField(max_length=41, validators=[slug_validator])
    instance = models.CharField(max_length=31, default="default", validators=[instance_validator])
    device_name = models.CharField(max_length=63, validators=[name_validator])
    config = models.JSONField(
        default=dict, blank=True, help_text="Ports and settings; secret settings stay masked."
    )
    imported = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["device_name", "slug", "instance"]
        verbose_name = "app to deploy"
        verbose_name_plural = "apps to deploy"
        constraints = [
            models.UniqueConstraint(
                fields=["slug", "instance", "device_name"], name="one_app_to_deploy_per_identity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.slug} ({self.instance}) on {self.device_name}"
