"""Backups: where they go (Destination), how often and how long (Policy), one restic
repository per app per destination (Repository), and what is stored (Snapshot).

Secrets (S3 keys, SFTP passwords, repository passwords) are encrypted at rest and never
leave the models through the API, pages or job output.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from encrypted_model_fields.fields import EncryptedTextField

name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}\Z", "Use letters, digits, spaces, '.', '-' or '_'."
)
bucket_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9.-]{1,62}\Z", "A bucket name is 2-63 lowercase letters, digits, '.', '-'."
)
endpoint_validator = RegexValidator(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?\Z",
    "An endpoint is http(s)://host or http(s)://host:port.",
)
prefix_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,100}\Z", "Use letters, digits, '.', '-', '_' and '/'."
)
path_validator = RegexValidator(r"^/[A-Za-z0-9_./-]{0,200}\Z", "An absolute path, e.g. /backups.")
region_validator = RegexValidator(r"^[a-z0-9-]{0,40}\Z", "A region such as us-east-1.")
username_validator = RegexValidator(r"^[a-z_][a-z0-9_-]{0,31}\Z", "A user name such as backup.")
address_validator = RegexValidator(r"^[A-Za-z0-9.:-]{1,253}\Z", "A host name or IP address.")


class Destination(models.Model):
    class Kind(models.TextChoices):
        S3 = "s3", "S3-compatible storage"
        SFTP = "sftp", "SFTP (a NAS or any SSH server)"

    name = models.CharField(max_length=60, unique=True, validators=[name_validator])
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # S3
    endpoint = models.CharField(max_length=200, blank=True, validators=[endpoint_validator])
    bucket = models.CharField(max_length=63, blank=True, validators=[bucket_validator])
    region = models.CharField(max_length=40, blank=True, validators=[region_validator])
    prefix = models.CharField(
        max_length=100,
        default="homelab",
        validators=[prefix_validator],
        help_text="Folder in the bucket that holds the repositories.",
    )
    access_key = EncryptedTextField(blank=True, editable=False)
    secret_key = EncryptedTextField(blank=True, editable=False)
    # SFTP
    address = models.CharField(max_length=253, blank=True, validators=[address_validator])
    port = models.PositiveIntegerField(
        default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    username = models.CharField(max_length=32, blank=True, validators=[username_validator])
    path = models.CharField(max_length=200, blank=True, validators=[path_validator])
    password = EncryptedTextField(blank=True, editable=False)
    # restic --limit-upload (KiB/s) for every device sending here; None: no limit
    upload_limit_kib = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(10_000_000)]
    )
    # the last test
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.TextField(blank=True)
    free_bytes = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def secret_values(self) -> list[str]:
        return [v for v in (self.access_key, self.secret_key, self.password) if v]


class Policy(models.Model):
    """The default policy (deployment_id null, one row) or one app's override."""

    deployment = models.OneToOneField(
        "marketplace.Deployment",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="backup_policy",
    )
    schedule = models.CharField(
        max_length=40,
        default="daily 03:00",
        validators=[RegexValidator(r"^daily ([01][0-9]|2[0-3]):[0-5][0-9]\Z", "daily HH:MM")],
    )
    keep_daily = models.PositiveSmallIntegerField(default=7, validators=[MaxValueValidator(1000)])
    keep_weekly = models.PositiveSmallIntegerField(default=4, validators=[MaxValueValidator(1000)])
    keep_monthly = models.PositiveSmallIntegerField(default=6, validators=[MaxValueValidator(1000)])
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "policies"
        constraints = (
            models.UniqueConstraint(
                fields=["deployment"],
                condition=models.Q(deployment__isnull=True),
                name="one_default_backup_policy",
            ),
        )

    def __str__(self) -> str:
        whose = self.deployment.app_name if self.deployment_id else "default"
        return f"{whose}: {self.schedule}, keep {self.keep_daily}/{self.keep_weekly}/{self.keep_monthly}"


class Repository(models.Model):
    """One restic repository per app per destination: locks, memory and deletion stay
    per app, and it follows the app when it moves."""

    deployment = models.ForeignKey(
        "marketplace.Deployment", on_delete=models.CASCADE, related_name="backup_repositories"
    )
    destination = models.ForeignKey(
        Destination, on_delete=models.PROTECT, related_name="repositories"
    )
    path = models.CharField(max_length=200)
    password = EncryptedTextField(editable=False)
    initialized = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "repositories"
        constraints = (
            models.UniqueConstraint(
                fields=["deployment", "destination"], name="one_repository_per_app_destination"
            ),
        )

    def __str__(self) -> str:
        return f"{self.deployment.app_name} on {self.destination}"


class Snapshot(models.Model):
    class Kind(models.TextChoices):
        VOLUMES = "volumes", "Volumes"
        DB = "db", "Database dump"

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="snapshots")
    deployment = models.ForeignKey(
        "marketplace.Deployment", on_delete=models.CASCADE, related_name="backup_snapshots"
    )
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="snapshots")
    device = models.ForeignKey(
        "devices.Device", on_delete=models.SET_NULL, null=True, related_name="backup_snapshots"
    )
    restic_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.VOLUMES)
    # the database a db snapshot holds ("" for volumes)
    database = models.CharField(max_length=41, blank=True)
    engine = models.CharField(max_length=10, blank=True)
    # the volumes' snapshot a db snapshot belongs with (one backup run)
    group = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="parts"
    )
    time = models.DateTimeField()
    total_bytes = models.BigIntegerField(default=0)
    added_bytes = models.BigIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)
    volumes = models.JSONField(default=list, blank=True)
    # restic exit 3: the snapshot exists but some files could not be read
    incomplete = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("core.Job", on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ("-time",)
        constraints = (
            models.UniqueConstraint(
                fields=["repository", "restic_id"], name="one_row_per_restic_snapshot"
            ),
        )

    def __str__(self) -> str:
        return f"{self.deployment.app_name} {self.restic_id[:8]} ({self.time:%Y-%m-%d %H:%M})"
