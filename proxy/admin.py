"""Read-only views of the front door's settings and names: changes go through the App
addresses page or the API, which validate them (the CA's key is never shown)."""

from __future__ import annotations

from django.contrib import admin

from proxy.models import AppAddress, ProxySettings


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # deleting the settings would make a new CA silently: every trusting device breaks
        return False


@admin.register(ProxySettings)
class ProxySettingsAdmin(ReadOnly):
    list_display = ("domain", "device", "mode", "updated")
    fields = ("domain", "device", "mode", "ca_certificate", "updated")
    readonly_fields = fields


@admin.register(AppAddress)
class AppAddressAdmin(ReadOnly):
    list_display = ("hostname", "deployment", "updated")
    search_fields = ("hostname",)
    fields = ("hostname", "deployment", "created", "updated")
    readonly_fields = fields
