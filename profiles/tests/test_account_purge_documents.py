"""An account removed for good (the purge after the restore window, `delete_user --hard`) takes its
documents through their service: the delete events go out and no cached text answers after it
(API.md: "Whatever door deletes a resume, requirements, ... (an account purge)")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts import services as account_services
from accounts.tests.factories import UserFactory
from notifications.models import OutboxEvent
from profiles.models import Requirements, Resume
from profiles.selectors.documents import DOCUMENT_CACHES
from profiles.services.documents import document_create

pytestmark = pytest.mark.django_db


def documents_of(user):
    resume = document_create(model=Resume, user_id=user.id, text="my resume")
    requirements = document_create(model=Requirements, user_id=user.id, text="the job")
    return resume, requirements


def assert_gone_with_events(resume, requirements):
    for model, document in ((Resume, resume), (Requirements, requirements)):
        assert not model.objects.filter(id=document.id).exists()
        assert cache.get(DOCUMENT_CACHES[model].key(document.id)) is None
        event = OutboxEvent.objects.get(key=f"delete_{model.kind}")
        assert event.payload[f"{model.kind}_id"] == str(document.id)


def test_a_hard_delete_emits_the_documents_delete_events_and_drops_their_cache(
    django_capture_on_commit_callbacks,
):
    UserFactory(roles=["user", "admin"])  # not the last administrator's account
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        resume, requirements = documents_of(user)
    assert cache.get(DOCUMENT_CACHES[Resume].key(resume.id)) is not None
    with django_capture_on_commit_callbacks(execute=True):
        account_services.user_hard_delete(user_id=user.id)
    assert_gone_with_events(resume, requirements)


def test_the_purge_after_the_restore_window_does_the_same(django_capture_on_commit_callbacks, settings):
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        resume, requirements = documents_of(user)
    type(user).objects.filter(id=user.id).update(
        deleted_at=timezone.now() - timedelta(days=settings.ACCOUNT_RESTORE_DAYS + 1), is_active=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert account_services.users_purge_deleted() == 1
    assert_gone_with_events(resume, requirements)
