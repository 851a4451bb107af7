from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profile data"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # --- Profile data: a malformed LLM_CATALOG_FILE stops the start here, naming the file and entry.
        from .llm_catalog import catalog_load

        catalog_load()

        # --- Documents: the consumer's processing_result handler, and stored files leaving with
        # their rows (cascades included: an account purged, an admin's delete).
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, pre_delete

        from . import handlers  # noqa: F401  (registers with notifications.consumer)
        from .models import Requirements, Resume
        from .services.documents import document_file_delete, user_documents_delete

        for model in (Resume, Requirements):
            post_delete.connect(
                document_file_delete, sender=model, dispatch_uid=f"document_file_{model.kind}"
            )
        # The user's data export: this app's sections, registered with accounts (which never imports it).
        from accounts.exports import export_sections_register

        from .selectors.documents_export import documents_export
        from .selectors.export import profile_data_export

        export_sections_register("profiles.documents", documents_export)
        export_sections_register("profiles.data", profile_data_export)

        # An account that goes for good takes its documents through their service (events, cache).
        pre_delete.connect(user_documents_delete, sender=get_user_model(), dispatch_uid="user_documents")
