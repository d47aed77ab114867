from django.urls import path

from pooling import views

urlpatterns = [
    path("", views.pooling_index, name="pooling_index"),
    path(
        "instances/<int:instance_id>/remove/",
        views.shared_instance_remove,
        name="shared_instance_remove",
    ),
]
