"""The local-filesystem store: a directory of buckets."""

from .store import LocalStore

__all__ = ["LocalStore"]
