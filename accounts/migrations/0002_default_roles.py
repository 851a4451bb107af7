"""The roles the service relies on: `user` (every account's default), `moderator`, `admin`."""

from django.db import migrations

ROLES = {
    "user": "Every account: its own data and settings.",
    "moderator": "Reviews content produced on the platform.",
    "admin": "Manages users, roles and role requests; may use the Django admin.",
}


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Role = apps.get_model("accounts", "Role")
    for name, description in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        Role.objects.get_or_create(group=group, defaults={"description": description})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
