"""The digests' input errors: one sentence naming what is wrong."""

from __future__ import annotations


class DigestInputError(ValueError):
    """Bad input for a subscription (the CLI exits 2, the web answers 400)."""


class DigestDenied(PermissionError):
    """The actor may not manage this reader's subscriptions."""
