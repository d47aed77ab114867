"""Admin for power users: mostly read-only, actions call the same services as the UI."""

from django import forms
from django.contrib import admin, messages

from devices import groups, services
from devices.models import Device, DeviceGroup, DeviceMetric, DeviceMetricHour
from devices.ssh import fingerprint


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("name", "address", "port", "device_type", "location", "status", "last_seen", "arch")
    list_filter = ("status", "device_type", "always_on")
    search_fields = ("name", "address", "location")
    readonly_fields = (
        "status", "status_detail", "missed_polls", "last_seen", "last_polled",
        "host_key_type", "pinned_fingerprint", "offered_fingerprint",
        "ram_total_bytes", "ram_used_bytes", "storage_total_bytes", "storage_used_bytes",
        "cpu_cores", "cpu_usage_percent", "load_1m", "load_5m", "load_15m", "uptime_seconds",
        "docker_version", "compose_version", "compose_command", "docker_root_dir",
        "containers_running", "arch", "os_name", "kernel", "created", "updated",
    )
    fields = ("name", "address", "port", "username", "device_type", "location", "always_on", *readonly_fields)
    actions = ["poll_now"]  # a new identity is trusted on its page, after seeing it

    def has_add_permission(self, request):
        # Adding needs a login test and key installation: use the "Add device" wizard.
        return False

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            services.device_update(device=Device.objects.get(pk=obj.pk), **changes)
        except services.DeviceError as exc:
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)

    def delete_model(self, request, obj):
        self.delete_queryset(request, [obj])

    def delete_queryset(self, request, queryset):
        for device in queryset:
            try:
                services.device_remove(device=device)
            except services.DeviceError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    @admin.display(description="Pinned identity (SHA256)")
    def pinned_fingerprint(self, obj):
        return fingerprint(obj.host_key)

    @admin.display(description="New identity offered (SHA256)")
    def offered_fingerprint(self, obj):
        return fingerprint(obj.offered_host_key)

    @admin.action(description="Check selected devices now")
    def poll_now(self, request, queryset):
        for device in queryset:
            services.device_poll(device_id=device.id)
        self.message_user(request, f"Checked {queryset.count()} device(s).")


@admin.register(DeviceMetric)
class DeviceMetricAdmin(admin.ModelAdmin):
    list_display = ("device", "time", "online", "ram_used_bytes", "cpu_usage_percent", "load_1m")
    list_filter = ("online", "device")
    date_hierarchy = "time"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DeviceGroupAdminForm(forms.ModelForm):
    class Meta:
        model = DeviceGroup
        fields = ("name", "description", "devices")

    def clean_name(self):
        # The same check as the service (names differing only in case are the same name),
        # made here so the form shows it beside the field instead of failing on save.
        name = self.cleaned_data["name"].strip()
        if groups.group_name_taken(name, group_id=self.instance.pk):
            raise forms.ValidationError(f"There is already a group called {name}.")
        return name


@admin.register(DeviceGroup)
class DeviceGroupAdmin(admin.ModelAdmin):
    """Groups through the same services as the Groups page (names checked the same way)."""

    form = DeviceGroupAdminForm
    list_display = ("name", "description", "member_count")
    search_fields = ("name", "description", "devices__name")
    filter_horizontal = ("devices",)
    fields = ("name", "description", "devices")

    @admin.display(description="Devices")
    def member_count(self, obj):
        return obj.devices.count()

    def save_model(self, request, obj, form, change):
        # The members are saved by save_related, through the service as well.
        request.group_error = None  # the admin object is shared between requests: keep it on the request
        data = form.cleaned_data
        try:
            if change:
                groups.group_update(
                    group=DeviceGroup.objects.get(pk=obj.pk), name=data["name"], description=data["description"]
                )
            else:
                obj.pk = groups.group_create(name=data["name"], description=data["description"]).pk
        except groups.GroupError as exc:
            request.group_error = exc
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)

    def save_related(self, request, form, formsets, change):
        if getattr(request, "group_error", None) is None and form.instance.pk:
            groups.group_update(
                group=DeviceGroup.objects.get(pk=form.instance.pk),
                device_ids=[device.pk for device in form.cleaned_data["devices"]],
            )

    def delete_model(self, request, obj):
        groups.group_delete(group=obj)


@admin.register(DeviceMetricHour)
class DeviceMetricHourAdmin(admin.ModelAdmin):
    list_display = ("device", "hour", "samples", "cpu_percent_avg", "ram_used_bytes_avg", "storage_used_bytes_avg")
    list_filter = ("device",)
    date_hierarchy = "hour"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
