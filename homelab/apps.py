from django.apps import AppConfig


class HomelabConfig(AppConfig):
    name = "homelab"
    verbose_name = "Homelab (accounts and API tokens)"

    def ready(self):
        from homelab import permissions  # noqa: F401  (registers the WebSocket role check)
