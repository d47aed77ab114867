"""Admin: read-only views of deployments, their steps and the commands they sent."""

from django.contrib import admin

from marketplace.models import Deployment, DeploymentCommand, DeploymentStep


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StepInline(admin.TabularInline):
    model = DeploymentStep
    extra = 0
    can_delete = False
    readonly_fields = ("time", "name", "status", "message")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Deployment)
class DeploymentAdmin(_ReadOnly):
    list_display = ("app_name", "instance", "device", "status", "url", "created")
    list_filter = ("status", "category", "device", "data_kept")
    search_fields = ("slug", "app_name", "instance", "project", "device__name")
    exclude = ("secrets", "database_passwords")
    readonly_fields = (
        "slug",
        "app_name",
        "category",
        "device",
        "instance",
        "project",
        "status",
        "config",
        "compose_masked",
        "compose_path",
        "url",
        "error",
        "reservation_id",
        "data_kept",
        "started_at",
        "finished_at",
        "user",
        "created",
        "updated",
    )
    inlines = [StepInline]


@admin.register(DeploymentStep)
class DeploymentStepAdmin(_ReadOnly):
    list_display = ("deployment", "time", "name", "status")
    list_filter = ("status",)
    search_fields = ("name", "message", "deployment__slug")


@admin.register(DeploymentCommand)
class DeploymentCommandAdmin(_ReadOnly):
    list_display = ("deployment", "time", "command", "exit_code")
    list_filter = ("exit_code",)
    search_fields = ("command", "output", "deployment__slug")
