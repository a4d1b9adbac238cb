"""Every REST method the emulator answers, registered by importing its module."""

from rop.bitrix.emulator import crm, directories, people  # noqa: F401  (registration)
from rop.bitrix.emulator.registry import METHODS, Call, Handler, Reply

__all__ = ["METHODS", "Call", "Handler", "Reply"]
