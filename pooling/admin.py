"""Admin: read-only views of shared instances and pooled databases (no secrets)."""

from django.contrib import admin

from pooling.models import PooledDatabase, SharedInstance


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SharedInstance)
class SharedInstanceAdmin(_ReadOnly):
    list_display = (
        "engine",
        "device",
        "version",
        "status",
        "measured_memory_bytes",
        "last_incident_at",
        "created",
    )
    list_filter = ("engine", "status", "device")
    exclude = ("admin_password",)


@admin.register(PooledDatabase)
class PooledDatabaseAdmin(_ReadOnly):
    list_display = (
        "database_name",
        "instance",
        "app_name",
        "project",
        "size_bytes",
        "connections",
        "created",
    )
    search_fields = ("database_name", "role_name")
    exclude = ("password",)
