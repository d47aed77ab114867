from django.contrib import admin

from fleet.models import AppToDeploy, DeviceToAdd


@admin.register(DeviceToAdd)
class DeviceToAddAdmin(admin.ModelAdmin):
    list_display = ("name", "address", "username", "device_type", "imported")
    search_fields = ("name", "address")
    readonly_fields = ("imported",)


@admin.register(AppToDeploy)
class AppToDeployAdmin(admin.ModelAdmin):
    list_display = ("slug", "instance", "device_name", "imported")
    search_fields = ("slug", "device_name")
    readonly_fields = ("imported",)
