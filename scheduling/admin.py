"""Admin for power users: the placement weights and policy, reservations, choices.

Weights are saved through `placement_settings_update`, the same check the API applies.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from scheduling import services
from scheduling.models import PlacementChoice, PlacementSettings, Reservation
from scheduling.scoring import CRITERIA


class PlacementSettingsForm(forms.ModelForm):
    class Meta:
        model = PlacementSettings
        fields = [
            "weight_ram",
            "weight_storage",
            "weight_cpu",
            "weight_load",
            "weight_uptime",
            "policy",
        ]

    def clean(self):
        cleaned = super().clean()
        weights = {name: cleaned.get(f"weight_{name}") for name in CRITERIA}
        if any(value is None for value in weights.values()):
            return cleaned  # the field errors already say what is missing
        negative = [name for name, value in weights.items() if value < 0]
        for name in negative:
            self.add_error(f"weight_{name}", "Enter a weight of 0 or more.")
        if not negative and sum(weights.values()) <= 0:
            raise forms.ValidationError(
                "At least one weight must be above 0; the weights are shares of the score."
            )
        return cleaned


@admin.register(PlacementSettings)
class PlacementSettingsAdmin(admin.ModelAdmin):
    form = PlacementSettingsForm
    list_display = ["__str__", "updated"]
    fieldsets = [
        (
            "Weights (shares of the score; the seeds' defaults are 40/30/15/10/5)",
            {
                "fields": [
                    "weight_ram",
                    "weight_storage",
                    "weight_cpu",
                    "weight_load",
                    "weight_uptime",
                ]
            },
        ),
        ("Policy", {"fields": ["policy"]}),
    ]

    def has_add_permission(self, request):
        # One row at most; deleting it returns to settings.PLACEMENT_WEIGHTS.
        return super().has_add_permission(request) and not PlacementSettings.objects.exists()

    def save_model(self, request, obj, form, change):
        try:
            services.placement_settings_update(
                weights={name: form.cleaned_data[f"weight_{name}"] for name in CRITERIA},
                policy=form.cleaned_data["policy"],
                instance=obj,
            )
        except services.PlacementError as exc:  # the form checks the same, so rare
            messages.error(request, exc.message)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = [
        "label",
        "device",
        "ram_bytes",
        "storage_bytes",
        "cpu_cores",
        "ports",
        "created",
        "expires_at",
        "released_at",
    ]
    list_filter = ["device"]
    search_fields = ["label", "device__name"]
    readonly_fields = [f.name for f in Reservation._meta.fields]
    actions = ["release"]

    def has_add_permission(self, request):
        return False  # the deployment engine creates them

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Release the selected reservations")
    def release(self, request, queryset):
        released = sum(
            services.reservation_release(reservation_id=pk)
            for pk in queryset.values_list("pk", flat=True)
        )
        messages.success(request, f"Released {released} reservation(s).")


@admin.register(PlacementChoice)
class PlacementChoiceAdmin(admin.ModelAdmin):
    list_display = ["created", "app_name", "chosen_device", "recommended_device", "policy", "user"]
    list_filter = ["policy", "chosen_device"]
    search_fields = ["app_name", "app_slug"]
    readonly_fields = [f.name for f in PlacementChoice._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
