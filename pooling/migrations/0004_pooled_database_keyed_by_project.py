"""A pooled database knows its app by (device, compose project), its name and its id,
instead of a foreign key to marketplace.Deployment: pooling sits below the apps layer.
The new fields are filled from the deployment each row pointed to, then the key goes."""

from django.db import migrations, models


def copy_app_fields(apps, schema_editor):
    PooledDatabase = apps.get_model("pooling", "PooledDatabase")
    for pooled in PooledDatabase.objects.exclude(deployment=None).select_related("deployment"):
        deployment = pooled.deployment
        pooled.project = deployment.project
        pooled.app_name = deployment.app_name
        pooled.app_instance = deployment.instance
        pooled.app_id = deployment.pk
        pooled.save(update_fields=["project", "app_name", "app_instance", "app_id"])


def copy_back(apps, schema_editor):
    PooledDatabase = apps.get_model("pooling", "PooledDatabase")
    Deployment = apps.get_model("marketplace", "Deployment")
    for pooled in PooledDatabase.objects.exclude(app_id=None):
        if Deployment.objects.filter(pk=pooled.app_id).exists():
            pooled.deployment_id = pooled.app_id
            pooled.save(update_fields=["deployment"])


class Migration(migrations.Migration):
    dependencies = [
        ("pooling", "0003_shared_instance_last_incident"),
        ("marketplace", "0003_deployment_data_kept"),
    ]

    operations = [
        migrations.AddField(
            model_name="pooleddatabase",
            name="project",
            field=models.CharField(blank=True, default="", max_length=63),
        ),
        migrations.AddField(
            model_name="pooleddatabase",
            name="app_name",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddField(
            model_name="pooleddatabase",
            name="app_instance",
            field=models.CharField(blank=True, default="", max_length=31),
        ),
        migrations.AddField(
            model_name="pooleddatabase",
            name="app_id",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(copy_app_fields, copy_back),
        migrations.RemoveField(
            model_name="pooleddatabase",
            name="deployment",
        ),
    ]
