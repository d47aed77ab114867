from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "App catalog and deployments"

    def ready(self) -> None:
        # the layers below ask the apps through these registries (DESIGN.md "Layers")
        from marketplace import selectors
        from pooling import hooks as pooling_hooks

        pooling_hooks.register_live_apps(selectors.live_apps_for_pooling)
