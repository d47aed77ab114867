from django.urls import path

from backups import views

urlpatterns = [
    path("", views.backups_index, name="backups_index"),
    path("apps/<int:deployment_id>/backup/", views.backup_now, name="backup_now"),
]
