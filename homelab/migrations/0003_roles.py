"""Roles: API tokens may be read-only; the three role groups; every existing account an Admin.

Before roles every account could do everything, so each one becomes an Admin: nobody is
locked out, and an Admin then gives others a smaller role on the Users page.
"""

from django.db import migrations, models

ROLE_GROUPS = ("Admin", "Operator", "Viewer")


def roles_forward(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLE_GROUPS}
    for user in User.objects.all():
        user.groups.add(groups["Admin"])


class Migration(migrations.Migration):
    dependencies = [
        ("homelab", "0002_firstrunclaim"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="read_only",
            field=models.BooleanField(
                default=False,
                help_text="A read-only token may only read (GET), whatever its person's role.",
            ),
        ),
        migrations.RunPython(roles_forward, migrations.RunPython.noop),
    ]
