"""The portal as an application host: install, update, uninstall, and the events they fire.

Glue between the registered :class:`Application`, the OAuth :class:`TokenStore`
and the :class:`EventHub`: it knows the portal's public address (learnt from
requests, since the emulator may sit on any port), builds the ``auth[...]`` block
events carry, and turns record changes into Bitrix24's CRM events.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from rop.emulator.application import INSTALLING, Application
from rop.emulator.config import AppSettings
from rop.emulator.data import Portal, Record
from rop.emulator.events import CALL_END_FIELDS, CRM_KINDS, Delivery, EventHub
from rop.emulator.oauth import TokenStore, server_endpoint_for

# The language the emulated portal speaks in events and frames.
LANGUAGE_ID = "ru"


def member_id_of(portal: Portal) -> str:
    """Stable per portal (Bitrix24's is 32 hex digits); portal.json may pin it."""
    pinned = portal.info.get("member_id")
    return str(pinned) if pinned else hashlib.md5(portal.domain.encode()).hexdigest()  # noqa: S324


class AppHost:
    def __init__(
        self,
        portal: Portal,
        tokens: TokenStore,
        settings: AppSettings | None,
        public_url: str = "",
    ) -> None:
        self.portal = portal
        self.tokens = tokens
        self.app = Application(None)
        self.events = EventHub(portal.clock.iso)
        # The portal's one address (DOMAIN, client_endpoint): pinned by the config, or
        # the first address a request came to. It never flips afterwards, because the
        # frame SDK and the app's checks compare it (pages redirect to it instead).
        self._base_url = public_url.rstrip("/")
        portal.listeners.append(self.on_change)
        if settings is not None:
            self.register(settings)

    # -- addresses -------------------------------------------------------------------

    def seen(self, base_url: str) -> None:
        """Learn the portal's address from the first request (unless pinned)."""
        if not self._base_url:
            self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._base_url or f"http://{self.portal.domain}"

    @property
    def domain(self) -> str:
        return self.base_url.split("://", 1)[-1]

    @property
    def protocol(self) -> str:
        return "1" if self.base_url.startswith("https://") else "0"

    @property
    def client_endpoint(self) -> str:
        return self.base_url + "/rest/"

    @property
    def server_endpoint(self) -> str:
        return server_endpoint_for(self.client_endpoint)

    # -- registration and install ------------------------------------------------------

    def register(self, settings: AppSettings) -> None:
        self.app.register(settings)
        self.tokens.client_id = settings.client_id
        self.tokens.client_secret = settings.client_secret
        self.tokens.scope = ",".join(settings.scopes)

    def issue(self, user_id: int) -> dict[str, Any]:
        return self.tokens.issue(user_id, self.client_endpoint)

    def install(self, user_id: int) -> None:
        """The admin pressed Install. Without an install URL it finishes at once."""
        self.app.begin_install(user_id)
        settings = self.app.settings
        if settings is None or not settings.install_url:
            self.finish()

    def finish(self) -> bool:
        """installFinish: events start to flow; ONAPPINSTALL goes out."""
        if not self.app.finish_install():
            return False
        settings = self.app.settings
        installer = self.app.installed_by or self.portal.webhook_user_id
        auth = self._auth_with_refresh(installer)
        data = {
            "VERSION": str(self.app.version),
            "ACTIVE": "Y",
            "INSTALLED": "Y",
            "LANGUAGE_ID": LANGUAGE_ID,
        }
        body = {"event": "ONAPPINSTALL", "data": data, "auth": auth}
        targets = {b.handler for b in self.events.online_for("ONAPPINSTALL")}
        for binding in self.events.online_for("ONAPPINSTALL"):
            self.events.deliver(binding, body)
        if settings and settings.install_handler and settings.install_handler not in targets:
            payload = {**body, "ts": str(int(time.time()))}
            self.events.deliver_to(
                settings.install_handler, Delivery("ONAPPINSTALL", "", 0, payload)
            )
        return True

    def uninstall(self, clean: bool) -> None:
        """ONAPPUNINSTALL (no tokens in auth), then the app's handlers, widgets and tokens go."""
        if not self.app.present:
            return
        auth = self.auth_block(None, self.app.scope)
        body = {
            "event": "ONAPPUNINSTALL",
            "data": {"LANGUAGE_ID": LANGUAGE_ID, "CLEAN": "1" if clean else "0"},
            "auth": auth,
        }
        for binding in self.events.online_for("ONAPPUNINSTALL"):
            self.events.deliver(binding, body)
        self.app.uninstall()
        self.events.clear()
        self.tokens.revoke_all()

    def update(self, version: int | None = None) -> None:
        """A new version: ONAPPUPDATE with the new application_token; handlers and
        widgets are removed (event-bind.md), so the app binds them again."""
        if not self.app.present:
            return
        previous = self.app.update(version)
        installer = self.app.installed_by or self.portal.webhook_user_id
        body = {
            "event": "ONAPPUPDATE",
            "data": {
                "VERSION": str(self.app.version),
                "PREVIOUS_VERSION": str(previous),
                "LANGUAGE_ID": LANGUAGE_ID,
            },
            "auth": self._auth_with_refresh(installer),
        }
        bindings = self.events.online_for("ONAPPUPDATE")
        for binding in bindings:
            self.events.deliver(binding, body)
        self.events.drop_bindings()

    # -- events --------------------------------------------------------------------------

    def _auth_with_refresh(self, user_id: int) -> dict[str, Any]:
        """ONAPPINSTALL's auth (and ONAPPUPDATE's, on-app-update.md's example): with a
        refresh token, ``expires`` and ``user_id`` (real payloads, BITRIX24_APP.md §1.4)."""
        issued = self.issue(user_id)
        auth = self.auth_block(user_id, self.app.scope, issued)
        auth["refresh_token"] = issued["refresh_token"]
        auth["expires"] = str(issued["expires"])
        auth["user_id"] = str(user_id)
        return auth

    def auth_block(
        self, user_id: int | None, scope: str, issued: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """auth-params-in-events.md; no tokens when no user acted (or on uninstall)."""
        auth: dict[str, Any] = {}
        if user_id is not None:
            issued = issued or self.issue(user_id)
            auth["access_token"] = issued["access_token"]
            auth["expires_in"] = str(issued["expires_in"])
        auth.update(
            {
                "scope": scope,
                "domain": self.domain,
                "server_endpoint": self.server_endpoint,
                "status": self.tokens.status,
                "client_endpoint": self.client_endpoint,
                "member_id": self.tokens.member_id,
                "application_token": self.app.application_token,
            }
        )
        return auth

    def fire(
        self, event: str, data: dict[str, Any], actor: int | None, scope: str, key: str
    ) -> None:
        """One event: online handlers get a POST each, offline ones a queue entry."""
        if not self.app.installed:  # installation-finish.md: nothing before installFinish
            return
        for binding in self.events.online_for(event):
            user = binding.auth_type or actor
            self.events.deliver(
                binding, {"event": event, "data": data, "auth": self.auth_block(user, scope)}
            )
        connectors = {b.auth_connector for b in self.events.offline_for(event)}
        fresh = False
        for connector in sorted(connectors):
            fresh = self.events.enqueue_offline(event, data, connector, key) or fresh
        if connectors:
            # on-offline-event.md: a doorbell with empty data and full auth (a refresh token too).
            for binding in self.events.online_for("ONOFFLINEEVENT"):
                user = binding.auth_type or actor or self.app.installed_by
                auth = self._auth_with_refresh(user)
                self.events.deliver(binding, {"event": "ONOFFLINEEVENT", "data": {}, "auth": auth})

    def on_change(
        self,
        kind: str,
        action: str,
        rid: int,
        before: Record | None,
        after: Record | None,
        actor: int | None,
    ) -> None:
        if self.app.state != "installed":
            return
        rid_text = str(rid)
        if kind in CRM_KINDS:
            name = CRM_KINDS[kind]
            if action == "update" and kind == "deal" and before and after:
                old_category = str(before.get("CATEGORY_ID") or "0")
                new_category = str(after.get("CATEGORY_ID") or "0")
                if old_category != new_category:
                    # on-crm-deal-move-to-category.md: a pipeline move fires this,
                    # not ONCRMDEALUPDATE.
                    fields = {
                        "ID": rid_text,
                        "CATEGORY_ID": new_category,
                        "STAGE_ID": str(after.get("STAGE_ID") or ""),
                    }
                    self.fire(
                        "ONCRMDEALMOVETOCATEGORY", {"FIELDS": fields}, actor, "crm", f"deal:{rid}"
                    )
                    return
            event = f"ONCRM{name}{action.upper()}"
            self.fire(event, {"FIELDS": {"ID": rid_text}}, actor, "crm", f"{kind}:{rid}")
        elif kind == "activity":
            self.fire(
                f"ONCRMACTIVITY{action.upper()}",
                {"FIELDS": {"ID": rid_text}},
                actor,
                "crm",
                f"activity:{rid}",
            )
        elif kind == "call" and action == "add" and after is not None:
            data = {name: after.get(name) for name in CALL_END_FIELDS}
            data["CALL_ID"] = after.get("CALL_ID") or rid_text
            self.fire("ONVOXIMPLANTCALLEND", data, actor, "telephony", f"call:{rid}")
        elif kind == "user" and action == "add" and after is not None:
            data = {k: after.get(k) for k in ("ID", "NAME", "LAST_NAME", "UF_DEPARTMENT")}
            self.fire("ONUSERADD", data, actor, "user", f"user:{rid}")

    @property
    def installing(self) -> bool:
        return self.app.state == INSTALLING
