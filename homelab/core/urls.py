from django.urls import path

from homelab.core import views

urlpatterns = [
    path("", views.activity, name="activity"),
    path("<int:job_id>/", views.job_detail, name="job_detail"),
    path("<int:job_id>/cancel/", views.job_cancel_view, name="job_cancel"),
]
