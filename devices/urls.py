from django.urls import path

from devices import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("devices/", views.device_list, name="device_list"),
    path("devices/add/", views.device_add, name="device_add"),
    path("devices/add/scan/", views.device_scan, name="device_scan"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path("devices/<int:pk>/ready/", views.device_ready, name="device_ready"),
    path("devices/<int:pk>/check/", views.device_check, name="device_check"),
    path("devices/<int:pk>/trust/", views.device_trust_host_key, name="device_trust_host_key"),
    path("devices/<int:pk>/edit/", views.device_edit, name="device_edit"),
    path("devices/<int:pk>/remove/", views.device_remove, name="device_remove"),
    path("groups/", views.group_list, name="group_list"),
    path("groups/<int:pk>/", views.group_detail, name="group_detail"),
    path("groups/<int:pk>/edit/", views.group_edit, name="group_edit"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
]
