"""Shared database servers per device and the isolated databases apps get in them."""

from __future__ import annotations

from django.db import models
from encrypted_model_fields.fields import EncryptedTextField


class Engine(models.TextChoices):
    POSTGRES = "postgres", "PostgreSQL"
    MARIADB = "mariadb", "MariaDB"
    REDIS = "redis", "Redis"


class SharedInstance(models.Model):
    """One shared database server (a compose project `hl-pool-<engine>`) on one device.

    Status transitions: starting -> running; running <-> stopped (health poll restarts it);
    any -> removed (with its last app, unless kept).
    """

    class Status(models.TextChoices):
        STARTING = "starting", "Starting"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"
        REMOVED = "removed", "Removed"

    device = models.ForeignKey(
        "devices.Device", on_delete=models.CASCADE, related_name="shared_instances"
    )
    engine = models.CharField(max_length=10, choices=Engine.choices)
    version = models.CharField(max_length=40)
    project = models.CharField(max_length=63)
    admin_password = EncryptedTextField(editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTING)
    measured_memory_bytes = models.BigIntegerField(null=True, blank=True)
    measured_at = models.DateTimeField(null=True, blank=True)
    # the memory of one standalone instance of the same engine and version on this device
    # (the "without pooling" baseline); None until measured: the documented default is used
    standalone_memory_bytes = models.BigIntegerField(null=True, blank=True)
    # what the health check last had to do about it, in words ("had stopped; started again")
    last_incident = models.TextField(blank=True, default="")
    last_incident_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("device_id", "engine")
        constraints = (
            models.UniqueConstraint(
                fields=["device", "engine"],
                condition=~models.Q(status="removed"),
                name="one_live_shared_instance_per_device_engine",
            ),
        )

    def __str__(self) -> str:
        return f"{self.get_engine_display()} on {self.device}"

    @property
    def version_label(self) -> str:
        """The version as people know it: the image tag without its flavour ("16-alpine" -> "16")."""
        return self.version.split("-", 1)[0]


class PooledDatabase(models.Model):
    """One app's database and role in a shared instance (names from validated slugs).

    The app is known by its compose project on the instance's device (the pair is the
    app's identity there), with its name and instance name for people and its id in the
    apps layer for the API: no foreign key, pooling sits below the apps."""

    instance = models.ForeignKey(SharedInstance, on_delete=models.CASCADE, related_name="databases")
    project = models.CharField(max_length=63, blank=True, default="")
    app_name = models.CharField(max_length=100, blank=True, default="")
    app_instance = models.CharField(max_length=31, blank=True, default="")
    app_id = models.PositiveIntegerField(null=True, blank=True)
    database_name = models.CharField(max_length=41)
    role_name = models.CharField(max_length=41)
    password = EncryptedTextField(editable=False)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    # open connections to it (Redis: of its user) when the instance was last measured
    connections = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("instance_id", "database_name")
        constraints = (
            models.UniqueConstraint(
                fields=["instance", "database_name"], name="one_database_name_per_instance"
            ),
        )

    def __str__(self) -> str:
        return f"{self.database_name} on {self.instance}"
