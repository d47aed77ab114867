from django.urls import path

from pooling import views

urlpatterns = [
    path("", views.pooling_index, name="pooling_index"),
]
