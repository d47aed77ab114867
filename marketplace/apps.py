from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "App catalog and deployments"

    def ready(self) -> None:
        # the layers below ask the apps through these registries (DESIGN.md "Layers")
        from devices import hooks as device_hooks
        from marketplace import recovery, selectors, services, watch
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
