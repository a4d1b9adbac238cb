"""Every REST method the emulator answers, registered by importing its module."""

from rop.emulator import appmethods, crm, directories, notify, people  # noqa: F401  (registration)
from rop.emulator.registry import METHODS, Call, Handler, Reply

__all__ = ["METHODS", "Call", "Handler", "Reply"]
