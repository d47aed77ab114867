from django.urls import path

from marketplace import views, watch_views

urlpatterns = [
    path("apps/", views.app_catalog, name="app_catalog"),
    path("apps/<slug:slug>/", views.app_detail, name="app_detail"),
    path("apps/<slug:slug>/deploy/", views.app_deploy, name="app_deploy"),
    path("apps/<slug:slug>/deploy/preview/", views.app_compose_preview, name="app_compose_preview"),
    path("deployments/", views.deployment_list, name="deployment_list"),
    path("deployments/<int:deployment_id>/", views.deployment_detail, name="deployment_detail"),
    path(
        "deployments/<int:deployment_id>/remove/", views.deployment_remove, name="deployment_remove"
    ),
    path(
        "deployments/<int:deployment_id>/settings/",
        views.deployment_settings,
        name="deployment_settings",
    ),
    path("deployments/<int:deployment_id>/logs/", views.deployment_logs, name="deployment_logs"),
    path("deployments/<int:deployment_id>/usage/", views.deployment_usage, name="deployment_usage"),
    path(
        "deployments/<int:deployment_id>/sign-in/",
        views.deployment_sign_in,
        name="deployment_sign_in",
    ),
    path(
        "deployments/<int:deployment_id>/what-i-did/",
        views.deployment_debug,
        name="deployment_debug",
    ),
    path(
        "deployments/<int:deployment_id>/watch/",
        watch_views.deployment_watch_settings,
        name="deployment_watch_settings",
    ),
    path("settings/notifications/", watch_views.notifications, name="notifications"),
    # start, stop, restart (after the fixed paths above)
    path(
        "deployments/<int:deployment_id>/<str:action>/",
        views.deployment_action,
        name="deployment_action",
    ),
]
