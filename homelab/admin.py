from django.contrib import admin

from homelab.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("hint", "name", "user", "read_only", "created", "last_used")
    search_fields = ("name", "user__username", "hint")
    readonly_fields = ("hint", "created", "last_used")
    fields = ("user", "name", "read_only", "hint", "created", "last_used")

    def has_add_permission(self, request):
        # A token is shown once when created: use `issue_api_token` or the API tokens page.
        return False


# --- The task queue: read-only --------------------------------------------------------------
# django-q2's own admins let a person add a Schedule naming any Python callable (`os.system`
# with any arguments) and re-run tasks: an admin session would become a shell on this host.
# Here they only show what ran, what failed and what waits; nothing is added, changed,
# deleted or run from these pages.

from django_q import admin as q_admin  # noqa: E402
from django_q.models import Failure, OrmQ, Schedule, Success  # noqa: E402


class _ReadOnly:
    actions = None

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}


_READ_ONLY = {
    Schedule: q_admin.ScheduleAdmin,
    Success: q_admin.TaskAdmin,
    Failure: q_admin.FailAdmin,
    OrmQ: q_admin.QueueAdmin,
}
for _model, _base in _READ_ONLY.items():
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, type(f"ReadOnly{_base.__name__}", (_ReadOnly, _base), {}))
