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
