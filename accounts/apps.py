from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # Django-required wiring, like contenttypes and permissions: a flushed
        # database (`flush`, transactional tests) gets the roles back.
        post_migrate.connect(ensure_default_roles, sender=self)


def ensure_default_roles(*, using: str = "default", **kwargs: object) -> None:
    """Create the roles the service relies on when they are missing (idempotent)."""
    from django.contrib.auth.models import Group

    from .models import DEFAULT_ROLES, Role

    for name, description in DEFAULT_ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        Role.objects.using(using).get_or_create(group=group, defaults={"description": description})
