"""The application installed in the emulated portal: registration, install state, placements.

Bitrix24 keeps, per portal and app: whether it is installed and whether the
install finished (``installFinish``; until then events are not delivered and
widgets are not shown, BITRIX24_APP.md §1.2), the ``application_token`` that
events and frame POSTs carry (new on every install and update, §1.4), and the
placements the app bound (``placement.bind``). Uninstalling drops all of it.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from rop.emulator.config import AppSettings

# The app's ID in the portal (/marketplace/app/<ID>/); one app per emulator.
APP_ID = 1
# Placements the emulator shows (the app's own page is DEFAULT).
KNOWN_PLACEMENTS = frozenset({"DEFAULT", "LEFT_MENU", "CRM_ANALYTICS_MENU", "REST_APP_URI"})
# Placements allowing one handler only (placement-bind.md ERROR_PLACEMENT_MAX_COUNT).
SINGLE_PLACEMENTS = frozenset({"REST_APP_URI", "PAGE_BACKGROUND_WORKER"})

ABSENT, INSTALLING, INSTALLED = "absent", "installing", "installed"
# Frames (APP_SIDs) remembered for their parent's calls; a long demo opens many.
SESSIONS_KEPT = 1000


@dataclass
class Placement:
    placement: str
    handler: str
    title: str = ""
    description: str = ""
    group_name: str = ""
    lang_all: dict[str, Any] = field(default_factory=dict)
    options: Any = field(default_factory=list)
    user_id: int = 0

    def as_reply(self) -> dict[str, Any]:
        """placement-get.md's row shape."""
        return {
            "placement": self.placement,
            "userId": self.user_id,
            "handler": self.handler,
            "options": self.options,
            "title": self.title,
            "description": self.description,
            "langAll": self.lang_all,
        }


@dataclass
class FrameSession:
    """One render of the app page (APP_SID): who opened it, where, with what."""

    user_id: int
    placement: str
    options: dict[str, Any]
    install: bool


class Application:
    """The registered app and its install state; thread-safe."""

    def __init__(self, settings: AppSettings | None) -> None:
        self.settings = settings
        self.state = ABSENT
        self.application_token = ""
        self.version = settings.version if settings else 1
        self.installed_by = 0
        self.first_run = True
        self.placements: list[Placement] = []
        self.sessions: dict[str, FrameSession] = {}
        self.options: dict[str, Any] = {}
        self.lock = threading.RLock()

    @property
    def registered(self) -> bool:
        return self.settings is not None

    @property
    def installed(self) -> bool:
        """installFinish done: events flow, placements show."""
        return self.state == INSTALLED

    @property
    def present(self) -> bool:
        """Installed or being installed: the app's tokens and REST context exist."""
        return self.state != ABSENT

    @property
    def scope(self) -> str:
        return ",".join(self.settings.scopes) if self.settings else ""

    def register(self, settings: AppSettings) -> None:
        with self.lock:
            self.settings = settings
            self.version = settings.version

    def begin_install(self, user_id: int) -> None:
        """The admin pressed Install: the app exists, not yet finished."""
        with self.lock:
            self.state = INSTALLING
            self.application_token = secrets.token_hex(16)
            self.installed_by = user_id
            self.first_run = True
            self.placements.clear()
            self.options.clear()

    def finish_install(self) -> bool:
        """installFinish; False if it was already finished (nothing to do)."""
        with self.lock:
            if self.state != INSTALLING:
                return False
            self.state = INSTALLED
            return True

    def uninstall(self) -> None:
        with self.lock:
            self.state = ABSENT
            self.placements.clear()
            self.sessions.clear()
            self.options.clear()

    def update(self, version: int | None = None) -> int:
        """A new version: new application_token; placements go (event-bind.md). Returns the old version."""
        with self.lock:
            previous = self.version
            self.version = version if version is not None else previous + 1
            if self.settings is not None:
                self.settings = replace(self.settings, version=self.version)
            self.application_token = secrets.token_hex(16)
            self.placements.clear()
            return previous

    def open_session(self, user_id: int, placement: str, options: dict[str, Any]) -> str:
        sid = secrets.token_hex(16)
        with self.lock:
            self.sessions[sid] = FrameSession(user_id, placement, options, not self.installed)
            while len(self.sessions) > SESSIONS_KEPT:  # the oldest render goes first
                del self.sessions[next(iter(self.sessions))]
        return sid

    def placement_handler(self, placement: str) -> Placement | None:
        with self.lock:
            return next((p for p in self.placements if p.placement == placement), None)
