from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import Group

from accounts.models import User
from accounts.tests.support import PASSWORD


class UserFactory(factory.django.DjangoModelFactory):
    """A user with the `user` role; `roles=[...]` and `password=...` to change them."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    # Not Faker's random names: one of them can be "too similar" to a test's new password.
    full_name = factory.Sequence(lambda n: f"Test Person {n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        if not create:
            return
        names = extracted if extracted is not None else ["user"]
        self.groups.set(Group.objects.filter(name__in=names))
        if "admin" in names and not self.is_staff:
            self.is_staff = True
        self.save()
