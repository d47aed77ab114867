"""Backups in the admin: secrets (keys, passwords) are never shown nor edited here
(their fields are not editable); snapshots are read-only (restic owns them)."""

from django.contrib import admin

from backups.models import Destination, Policy, Repository, Snapshot


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "endpoint", "bucket", "address", "last_test_ok")
    readonly_fields = ("last_test_at", "last_test_ok", "last_test_message", "free_bytes")


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "enabled")


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("deployment", "destination", "path", "initialized")
    readonly_fields = ("deployment", "destination", "path", "initialized")


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ("deployment", "destination", "kind", "restic_id", "time", "total_bytes")
    list_filter = ("kind", "destination")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
