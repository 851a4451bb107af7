from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

#: Role names (Django groups) the service itself relies on.
ROLE_USER = "user"
ROLE_MODERATOR = "moderator"
ROLE_ADMIN = "admin"
#: The roles the service relies on; created by migration 0002 and kept by `ensure_default_roles`.
DEFAULT_ROLES = {
    ROLE_USER: "Every account: its own data and settings.",
    ROLE_MODERATOR: "Reviews content produced on the platform.",
    ROLE_ADMIN: "Manages users, roles and role requests; may use the Django admin.",
}


def user_is_admin(*, is_superuser: bool, roles: Iterable[str]) -> bool:
    """The one `is_admin` rule: a superuser, or a member of the `admin` role.

    `User.is_admin`, the cached `Principal`, the API's user shape, the Django
    admin's permissions and the staff flag all ask this function.
    """
    return is_superuser or ROLE_ADMIN in roles


class UsernameValidator(RegexValidator):
    """ASCII letters, digits and . + - _

    No "@", so a login name is a username or an email, never both. ASCII only,
    so that no two usernames look alike (Cyrillic U+0430 against Latin "a") and
    case-insensitive uniqueness is exact on every database (SQLite's LOWER()
    folds ASCII only). Full names take any script.
    """

    regex = r"^[A-Za-z0-9_.+-]+\Z"
    message = "Enter a valid username: English letters, digits and . + - _ only."


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively: they are stored lower-cased."""
    return email.strip().lower()


class UserQuerySet(models.QuerySet["User"]):
    def by_login(self, identifier: str) -> UserQuerySet:
        """Users whose username (any case) or email is `identifier`.

        `lower(username)` matches the functional unique index, so this is an
        index lookup on PostgreSQL, unlike `username__iexact`.
        """
        identifier = identifier.strip()
        if "@" in identifier:
            return self.filter(email=normalize_email(identifier))
        return self.alias(username_lower=Lower("username")).filter(username_lower=identifier.lower())

    def alive(self) -> UserQuerySet:
        return self.filter(deleted_at__isnull=True)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_queryset(self) -> UserQuerySet:
        return UserQuerySet(self.model, using=self._db)

    def by_login(self, identifier: str) -> UserQuerySet:
        return self.get_queryset().by_login(identifier)

    def get_by_natural_key(self, username: str | None) -> User:
        # The Django admin's login form: username in any case, or the email.
        return self.by_login(username or "").get()

    def create_user(self, username: str, email: str, password: str | None = None, **extra: Any) -> User:
        """Low-level create, for Django's own tooling.

        The API, the admin forms and the commands (`createsuperuser` included) go
        through `accounts.services.user_create`, which also validates and assigns roles.
        """
        user = self.model(username=username, email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, email: str, password: str | None = None, **extra: Any) -> User:
        """Low-level, as `create_user`: the row alone (no roles, event or audit row).

        Django's `createsuperuser` does not come here: the `accounts` command of
        that name takes its place and creates the account through the service.
        """
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(username, email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """An account. Roles are its Django groups; `deleted_at` marks a soft delete."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = models.CharField(
        max_length=150,
        unique=True,
        validators=[UsernameValidator()],
        help_text="150 characters or fewer: English letters, digits and . + - _",
    )
    # Blank for accounts made by a provider that gives no address (Telegram);
    # unique among the others (constraint below).
    email = models.EmailField(max_length=254, blank=True)
    full_name = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log in to the Django admin.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by_owner = models.BooleanField(
        default=False,
        help_text="The owner deleted the account (they may restore it within ACCOUNT_RESTORE_DAYS); "
        "an administrator's deletion is theirs to undo only.",
    )
    email_verified = models.BooleanField(
        default=False, help_text="The owner of the address used a link mailed to it (or a reset link)."
    )
    # An email change waits here until a link mailed to the new address is used.
    email_pending = models.EmailField(max_length=254, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
            models.UniqueConstraint(
                fields=["email"], condition=~models.Q(email=""), name="accounts_user_email_unique"
            ),
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return self.username

    @property
    def roles(self) -> list[str]:
        return sorted(group.name for group in self.groups.all())

    @property
    def is_admin(self) -> bool:
        return user_is_admin(is_superuser=self.is_superuser, roles=self.roles)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def mfa_enabled(self) -> bool:
        """A confirmed TOTP device. Join it (`select_related("totp_device")`) where users are listed."""
        try:
            device = self.totp_device
        except TOTPDevice.DoesNotExist:
            return False
        return device.confirmed_at is not None

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)


class Role(models.Model):
    """The description shown for a role (a Django group) in `GET /roles`."""

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, primary_key=True, related_name="role"
    )
    description = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return self.group.name


class AuthSessionQuerySet(models.QuerySet["AuthSession"]):
    def active(self) -> AuthSessionQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class AuthSession(models.Model):
    """One login: the refresh-token chain and the access tokens made from it.

    Only the SHA-256 of the current refresh token is kept; a token of this
    session that does not match it was spent already (theft detection).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(help_text="Absolute end, whatever the rotations.")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    refresh_token_hash = models.CharField(max_length=64, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=32, blank=True)

    objects = AuthSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-last_used_at"]
        indexes = [models.Index(fields=["user", "revoked_at", "last_used_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} session {self.id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class AuditEvent(models.Model):
    """A security event: who, from where, what. Never a password or a token."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOCKOUT = "lockout", "Account locked out"
        UNLOCK = "unlock", "Account unlocked"
        TOKEN_REUSE = "token_reuse", "Refresh token reuse (theft) detected"
        LOGOUT = "logout", "Logout"
        SESSION_REVOKED = "session_revoked", "Session revoked"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
        PASSWORD_RESET = "password_reset", "Password reset"
        REGISTERED = "registered", "Registered"
        PROFILE_UPDATED = "profile_updated", "Profile updated"
        ACTIVATED = "activated", "Activated"
        DEACTIVATED = "deactivated", "Deactivated"
        DELETED = "deleted", "Deleted"
        RESTORED = "restored", "Restored"
        PURGED = "purged", "Purged"
        ROLE_CHANGED = "role_changed", "Roles changed"
        ADMIN_ACTION = "admin_action", "Admin action"
        IDENTITY_LINKED = "identity_linked", "Social identity linked"
        IDENTITY_UNLINKED = "identity_unlinked", "Social identity unlinked"
        MFA_ENABLED = "mfa_enabled", "MFA turned on"
        MFA_DISABLED = "mfa_disabled", "MFA turned off or reset"
        RECOVERY_CODES_GENERATED = "recovery_codes_generated", "Recovery codes generated"
        RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who did it, if not the user.",
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.user_id} {self.created_at:%Y-%m-%d %H:%M}"


class LoginLockout(models.Model):
    """Failed password logins counted per account (or per unknown login name).

    Kept in the database, not the cache: a cache outage must never read as
    "no lockout".
    """

    key = models.CharField(max_length=300, primary_key=True, help_text="user:<id> or name:<login name>")
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    failures = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class RoleRequest(models.Model):
    """A user's request for a role, decided once by an administrator (API or Django admin)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_requests")
    role = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="+")
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="pending"),
                name="role_request_one_pending_per_user",
            )
        ]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.user} → {self.role} ({self.status})"


class TOTPDevice(models.Model):
    """A user's TOTP authenticator (RFC 6238), pending until a first code confirms it.

    `secret` is a Fernet token of the base32 secret (`FIELD_ENCRYPTION_KEYS`), never the secret.
    `last_used_step` is the time step of the last accepted code: claimed with a conditional UPDATE,
    so a code works once whichever worker sees it.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="totp_device")
    secret = models.TextField(editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_step = models.BigIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"TOTP of {self.user_id} ({'on' if self.confirmed_at else 'pending'})"


class RecoveryCode(models.Model):
    """One single-use recovery code, stored only as a keyed hash (HMAC-SHA256)."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64, editable=False)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "code_hash"], name="recovery_code_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id} ({'used' if self.used_at else 'unused'})"


class MFAChallenge(models.Model):
    """A login that passed its first factor and waits for the second: what an `mfa_token` names.

    Only the token's hash is stored. Single use (`used_at`, claimed with a conditional UPDATE),
    bound to one account, expiring at `expires_at`; `failures` wrong codes spend it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    amr = models.JSONField(default=list, help_text="The first factor(s): pwd, or a provider's name.")
    purpose = models.CharField(max_length=16, default="login")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"MFA challenge of {self.user_id}"
