from django.urls import path

from fleet import views

urlpatterns = [
    path("topology/", views.topology_page, name="topology"),
    path("settings/export-import/", views.export_import, name="export_import"),
    path("settings/export-import/homelab.yaml", views.export_download, name="export_download"),
]
