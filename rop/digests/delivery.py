"""A delivery that did not go: transient (retry with backoff) or final."""

from __future__ import annotations


class DeliveryError(RuntimeError):
    """Why a channel could not deliver; ``transient``: worth another try later."""

    def __init__(self, reason: str, *, transient: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
