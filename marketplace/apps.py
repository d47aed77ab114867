from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "App catalog and deployments"

    def ready(self) -> None:
        # the layers below ask the apps through these registries (DESIGN.md "Layers")
        from django.urls import reverse

        from devices import hooks as device_hooks
        from homelab.core.jobs import register_job_kind, register_target_url
        from marketplace import jobs, recovery, selectors, services, watch
        from pooling import hooks as pooling_hooks
        from scheduling import hooks as scheduling_hooks

        device_hooks.after_poll.register(recovery.after_device_poll, order=20)
        device_hooks.after_poll.register(watch.after_device_poll, order=30)
        device_hooks.dashboard_figures.register(selectors.dashboard_figures, order=10)
        device_hooks.device_removal_blockers.register(selectors.live_app_names)
        device_hooks.before_device_removal.register(services.deployments_forget_device)
        device_hooks.device_apps.register(selectors.apps_on_devices)
        pooling_hooks.register_live_apps(selectors.live_apps_for_pooling)
        scheduling_hooks.catalog_apps.register(selectors.catalog_apps_for_placement)
        scheduling_hooks.host_ports_in_use.register(selectors.host_ports_in_use)

        for kind, runner_class in jobs.KINDS.items():
            register_job_kind(kind, runner_class)
        register_target_url("deployment", lambda pk: reverse("deployment_detail", args=[pk]))
