from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from homelab import users, views
from homelab.api import api

urlpatterns = [
    path("setup/", views.first_run, name="first_run"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/tokens/", views.api_tokens, name="api_tokens"),
    path("users/", users.users, name="users"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("activity/", include("homelab.core.urls")),
    path("placement/", include("scheduling.urls")),
    path("pooling/", include("pooling.urls")),
    path("settings/app-addresses/", include("proxy.urls")),
    path("backups/", include("backups.urls")),
    path("", include("fleet.urls")),
    path("", include("marketplace.urls")),
    path("", include("devices.urls")),
]
