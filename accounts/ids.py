"""The type of the ids services take: `core.ids.Id`, named here for the accounts services."""

from core.ids import Id

__all__ = ["Id"]
