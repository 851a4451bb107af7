"""The type of the ids services take: `config.ids.Id`, named here for the accounts services."""

from config.ids import Id

__all__ = ["Id"]
