"""The front door's settings (one row) and the names people gave their apps."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from encrypted_model_fields.fields import EncryptedTextField

from devices.models import Device
from marketplace.models import Deployment
from proxy.names import DEFAULT_DOMAIN, domain_problem, hostname_problem


def validate_domain(value: str) -> None:
    problem = domain_problem(value)
    if problem:
        raise ValidationError(problem)


def validate_hostname(value: str) -> None:
    problem = hostname_problem(value)
    if problem:
        raise ValidationError(problem)


class ProxyMode(models.TextChoices):
    INTERNAL_CA = "internal_ca", "The homelab's own certificates (trust them once per device)"
    ACME_DNS = "acme_dns", "Publicly trusted certificates for my own domain (ACME, DNS challenge)"


class ProxySettings(models.Model):
    """One row: the home domain, which device runs the front door, and its certificates.

    The certificate authority's private key is encrypted at rest like every secret and
    never leaves the control plane except inside the front door's own files.
    """

    domain = models.CharField(max_length=253, default=DEFAULT_DOMAIN, validators=[validate_domain])
    device = models.ForeignKey(
        Device,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The device that runs the front door; empty: none chosen yet.",
    )
    mode = models.CharField(max_length=12, choices=ProxyMode.choices, default=ProxyMode.INTERNAL_CA)
    ca_certificate = models.TextField(
        blank=True, editable=False, help_text="The homelab CA's certificate (PEM, public)."
    )
    ca_private_key = EncryptedTextField(blank=True, default="", editable=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "front door settings"
        verbose_name_plural = "front door settings"

    def __str__(self) -> str:
        return f"Apps at https://<app>.{self.domain}"


class AppAddress(models.Model):
    """The name a person chose for one deployment (without a row: its default name)."""

    deployment = models.OneToOneField(
        Deployment, on_delete=models.CASCADE, related_name="app_address"
    )
    hostname = models.CharField(max_length=253, validators=[validate_hostname])
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["hostname"]
        verbose_name_plural = "app addresses"

    def __str__(self) -> str:
        return self.hostname
