from django.urls import path

from proxy import views

urlpatterns = [
    path("", views.app_addresses, name="app_addresses"),
]
