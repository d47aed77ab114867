"""ASGI entry point: HTTP (Django) and WebSocket (Channels) in one daphne process."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homelab.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from homelab.routing import websocket_urlpatterns  # noqa: E402


class OwnOriginValidator(OriginValidator):
    """A WebSocket handshake must come from a page of one of our own host names.

    The allowed hosts (never a `*` in them: a page elsewhere must not stream the dashboard
    with a visitor's session) and the configured CSRF trusted origins; read at each
    handshake, so a changed setting applies at once.
    """

    def __init__(self, application):
        super().__init__(application, [])

    @property
    def allowed_origins(self):
        hosts = [host for host in settings.ALLOWED_HOSTS if host and host != "*"]
        return hosts + list(getattr(settings, "CSRF_TRUSTED_ORIGINS", []))

    @allowed_origins.setter
    def allowed_origins(self, value):  # OriginValidator.__init__ assigns it
        pass


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OwnOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
