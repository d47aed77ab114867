from django.apps import AppConfig


class HomelabConfig(AppConfig):
    name = "homelab"
    verbose_name = "Homelab (accounts and API tokens)"
