from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications and events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Readiness and metrics of the outbox: core serves both pages and imports no app.
        from core.health import readiness_check_register
        from core.metrics_view import metrics_collector_register

        from .health import OutboxCollector, outbox_keeps_up

        readiness_check_register("events", outbox_keeps_up)
        metrics_collector_register(OutboxCollector())
