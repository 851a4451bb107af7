from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profile data"
    default_auto_field = "django.db.models.BigAutoField"
