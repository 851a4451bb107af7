"""The API's permissions. `IsAdmin` lives in `core.permissions`, so the apps below accounts
(notifications) use it without importing accounts; it is kept importable from here."""

from core.permissions import IsAdmin

__all__ = ["IsAdmin"]
