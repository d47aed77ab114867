"""Jobs in the admin: read only, with their steps and items inline."""

from __future__ import annotations

from django.contrib import admin

from homelab.core.models import Job, JobItem, JobStep


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class JobStepInline(_ReadOnlyInline):
    model = JobStep
    fields = ["order", "name", "status", "message", "started_at", "finished_at"]
    readonly_fields = fields


class JobItemInline(_ReadOnlyInline):
    model = JobItem
    fields = ["label", "target_type", "target_id", "status", "message", "updated_at"]
    readonly_fields = fields


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "target_label", "status", "user", "created", "finished_at"]
    list_filter = ["status", "kind", "target_type"]
    search_fields = ["kind", "target_label", "target_id", "error", "user__username"]
    date_hierarchy = "created"
    inlines = [JobStepInline, JobItemInline]
    # params are shown: they never hold secrets (job_enqueue's rule)
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
