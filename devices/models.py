"""Devices: the machines of the homelab, how we reach them, and what they report."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from encrypted_model_fields.fields import EncryptedTextField

# Names that may reach a shell or a path: letters, digits, dot, dash, underscore.
NAME_PATTERN = r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z"
# An IPv4/IPv6 address or a DNS host name; no spaces, quotes or shell characters.
ADDRESS_PATTERN = r"\A(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]+)\Z"
# POSIX-style login names.
USERNAME_PATTERN = r"\A[a-z_][a-z0-9_-]{0,31}\Z"
LABEL_PATTERN = r"\A[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}\Z"

name_validator = RegexValidator(
    NAME_PATTERN,
    "Use letters, digits, dots, dashes or underscores (up to 63), starting with a letter or digit.",
)
address_validator = RegexValidator(
    ADDRESS_PATTERN, "Enter an IP address (like 192.168.1.20) or a host name (like pi-4.local)."
)
username_validator = RegexValidator(
    USERNAME_PATTERN,
    "Enter the login name you use on the device (lower-case letters, digits, - or _; like pi or root).",
)
label_validator = RegexValidator(
    LABEL_PATTERN, "Use letters, digits, spaces, dots, dashes or underscores (up to 63)."
)


class DeviceType(models.TextChoices):
    SERVER = "server", "Server"
    PI = "pi", "Raspberry Pi / single-board computer"
    NAS = "nas", "NAS"
    ROUTER = "router", "Router"
    OTHER = "other", "Other"


class DeviceStatus(models.TextChoices):
    """Where a device stands, each with words for a person and a fix (see devices.status)."""

    PENDING = "pending", "Not checked yet"
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    AUTH_FAILED = "auth_failed", "Login refused"
    HOST_KEY_CHANGED = "host_key_changed", "Identity changed"
    DOCKER_MISSING = "docker_missing", "Docker missing"


class Device(models.Model):
    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    address = models.CharField(max_length=253, validators=[address_validator])
    port = models.PositiveIntegerField(
        default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    username = models.CharField(max_length=32, validators=[username_validator])
    device_type = models.CharField(max_length=10, choices=DeviceType.choices, default=DeviceType.SERVER)
    location = models.CharField(max_length=63, blank=True, validators=[label_validator])
    always_on = models.BooleanField(
        default=True, help_text="The device stays powered on (preferred for always-on apps)."
    )

    # Our own generated key pair; the private half is encrypted at rest.
    private_key = EncryptedTextField(editable=False)
    public_key = models.TextField(editable=False)
    # Host key pinned at first contact (key type + base64), and one seen since that differs.
    host_key_type = models.CharField(max_length=40, blank=True, editable=False)
    host_key = models.TextField(blank=True, editable=False)
    offered_host_key_type = models.CharField(max_length=40, blank=True, editable=False)
    offered_host_key = models.TextField(blank=True, editable=False)

    status = models.CharField(max_length=20, choices=DeviceStatus.choices, default=DeviceStatus.PENDING)
    status_detail = models.TextField(blank=True, help_text="What the last check saw, in plain words.")
    missed_polls = models.PositiveIntegerField(default=0)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_polled = models.DateTimeField(null=True, blank=True)

    # Latest metrics (history lives in DeviceMetric).
    ram_total_bytes = models.BigIntegerField(null=True, blank=True)
    ram_used_bytes = models.BigIntegerField(null=True, blank=True)
    storage_total_bytes = models.BigIntegerField(null=True, blank=True)
    storage_used_bytes = models.BigIntegerField(null=True, blank=True)
    cpu_cores = models.FloatField(null=True, blank=True)
    cpu_usage_percent = models.FloatField(null=True, blank=True)
    load_1m = models.FloatField(null=True, blank=True)
    load_5m = models.FloatField(null=True, blank=True)
    load_15m = models.FloatField(null=True, blank=True)
    uptime_seconds = models.BigIntegerField(null=True, blank=True)
    docker_version = models.CharField(max_length=40, blank=True)
    compose_version = models.CharField(max_length=40, blank=True)
    compose_command = models.CharField(
        max_length=20, blank=True, help_text="'docker compose' (v2) or 'docker-compose' (v1)."
    )
    docker_root_dir = models.CharField(max_length=255, blank=True)
    containers_running = models.PositiveIntegerField(null=True, blank=True)
    arch = models.CharField(max_length=20, blank=True)
    os_name = models.CharField(max_length=120, blank=True)
    kernel = models.CharField(max_length=120, blank=True)
    # The last poll's raw CPU counters, so the next poll reports the average since then.
    cpu_counters = models.JSONField(default=dict, blank=True, editable=False)
    app_containers = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Our apps' containers as the last poll found them, by compose project: "
        "name, service, state, exit code, restart count, health, OOM kill, start/finish times.",
    )

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_online(self) -> bool:
        return self.status == DeviceStatus.ONLINE

    @property
    def ram_free_bytes(self) -> int | None:
        if self.ram_total_bytes is None or self.ram_used_bytes is None:
            return None
        return max(self.ram_total_bytes - self.ram_used_bytes, 0)

    @property
    def storage_free_bytes(self) -> int | None:
        if self.storage_total_bytes is None or self.storage_used_bytes is None:
            return None
        return max(self.storage_total_bytes - self.storage_used_bytes, 0)

    @property
    def ram_percent(self) -> float | None:
        if not self.ram_total_bytes or self.ram_used_bytes is None:
            return None
        return 100.0 * self.ram_used_bytes / self.ram_total_bytes

    @property
    def storage_percent(self) -> float | None:
        if not self.storage_total_bytes or self.storage_used_bytes is None:
            return None
        return 100.0 * self.storage_used_bytes / self.storage_total_bytes


class DeviceMetric(models.Model):
    """One poll's result. Kept for METRIC_RETENTION_DAYS for graphs and availability."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="metrics")
    time = models.DateTimeField(db_index=True)
    online = models.BooleanField()
    ram_total_bytes = models.BigIntegerField(null=True, blank=True)
    ram_used_bytes = models.BigIntegerField(null=True, blank=True)
    storage_total_bytes = models.BigIntegerField(null=True, blank=True)
    storage_used_bytes = models.BigIntegerField(null=True, blank=True)
    cpu_usage_percent = models.FloatField(null=True, blank=True)
    load_1m = models.FloatField(null=True, blank=True)
    containers_running = models.PositiveIntegerField(null=True, blank=True)
    poll_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["device", "time"])]

    def __str__(self) -> str:
        return f"{self.device} at {self.time:%Y-%m-%d %H:%M:%S}"


class DeviceLease(models.Model):
    """Who works on a device right now: one row per device, claimed with a conditional
    UPDATE (works on SQLite, where select_for_update does nothing). `expires_at` frees a
    lease whose holder died. See devices.lease."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="+")
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.device_id} held by {self.holder}"


class DeviceGroup(models.Model):
    """Devices named together by place, role or hardware ("Pi Cluster", "Garage").
    A device may be in several groups. Changed through devices.groups."""

    name = models.CharField(max_length=63, unique=True, validators=[label_validator])
    description = models.CharField(max_length=300, blank=True)
    devices = models.ManyToManyField(Device, related_name="device_groups", blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeviceMetricHour(models.Model):
    """One device's metrics over one clock hour: min, average and max of each figure over
    the raw DeviceMetric rows of that hour (online ones for the figures), kept a year so a
    30-day chart reads 720 rows. Filled by devices.history.history_rollup."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="metric_hours")
    hour = models.DateTimeField(help_text="The start of the hour (UTC).")
    samples = models.PositiveIntegerField(help_text="Raw rows in the hour.")
    online_samples = models.PositiveIntegerField(help_text="Raw rows of the hour where the device answered.")
    cpu_percent_min = models.FloatField(null=True, blank=True)
    cpu_percent_avg = models.FloatField(null=True, blank=True)
    cpu_percent_max = models.FloatField(null=True, blank=True)
    ram_used_bytes_min = models.BigIntegerField(null=True, blank=True)
    ram_used_bytes_avg = models.FloatField(null=True, blank=True)
    ram_used_bytes_max = models.BigIntegerField(null=True, blank=True)
    storage_used_bytes_min = models.BigIntegerField(null=True, blank=True)
    storage_used_bytes_avg = models.FloatField(null=True, blank=True)
    storage_used_bytes_max = models.BigIntegerField(null=True, blank=True)
    load_1m_min = models.FloatField(null=True, blank=True)
    load_1m_avg = models.FloatField(null=True, blank=True)
    load_1m_max = models.FloatField(null=True, blank=True)
    temperature_c_min = models.FloatField(null=True, blank=True)
    temperature_c_avg = models.FloatField(null=True, blank=True)
    temperature_c_max = models.FloatField(null=True, blank=True)
    # For "drops off the network often" without reading a week of raw rows: the times the
    # device stopped answering within the hour, and whether it answered first and last.
    drops = models.PositiveIntegerField(default=0)
    first_online = models.BooleanField(null=True)
    last_online = models.BooleanField(null=True)
    # The hour's last capacities, so a forecast knows how full "full" is.
    ram_total_bytes = models.BigIntegerField(null=True, blank=True)
    storage_total_bytes = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["device", "hour"]
        constraints = [models.UniqueConstraint(fields=["device", "hour"], name="one_rollup_per_device_hour")]

    def __str__(self) -> str:
        return f"{self.device} hour {self.hour:%Y-%m-%d %H:00}"
