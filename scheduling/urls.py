from django.urls import path

from scheduling import views

urlpatterns = [
    path("", views.placement_index, name="placement_index"),
    path("custom/", views.placement_custom, name="placement_custom"),
    path("<slug:slug>/", views.placement_app, name="placement_app"),
]
