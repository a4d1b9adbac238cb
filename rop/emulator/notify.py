"""Chat delivery: notifications and a chat bot, recorded for tests and the portal page.

- ``im.notify.system.add`` / ``im.notify.personal.add`` (b24restdocs:
  api-reference/chats/notifications/im-notify-system-add.md): USER_ID and
  MESSAGE required (``USER_ID_EMPTY``, ``MESSAGE_EMPTY``); MESSAGE trimmed;
  a TAG removes the user's older notifications with the same tag (by
  webhook only together with CLIENT_ID, as the page says; without it the
  emulator ignores the tag); ATTACH an object or a JSON string, at most
  30 KB (``ATTACH_OVERSIZE``), blocks of known kinds (``ATTACH_ERROR``).
- ``imbot.v2.Bot.register`` (idempotent per code and caller; by webhook it
  needs ``fields.botToken``) and ``imbot.v2.Chat.Message.send`` (message up
  to 20,000 characters, ATTACH up to 60,000).

Every call is kept in ``inbox(portal).calls``; the live notifications per
user in ``inbox(portal).notifications``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from rop.emulator.data import Portal
from rop.emulator.errors import ApiError
from rop.emulator.params import get
from rop.emulator.registry import Call, Reply, method

NOTIFY_ATTACH_LIMIT = 30 * 1024
BOT_ATTACH_LIMIT = 60_000
BOT_MESSAGE_LIMIT = 20_000
_BLOCKS = {"MESSAGE", "LINK", "USER", "GRID", "IMAGE", "FILE", "DELIMITER", "HTML"}


@dataclass
class Inbox:
    calls: list[dict[str, Any]] = field(default_factory=list)
    notifications: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    bots: dict[tuple[str, str], int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)


def inbox(portal: Portal) -> Inbox:
    """The portal's chat side (created on first use)."""
    with portal.lock:
        box = portal.__dict__.get("_inbox")
        if box is None:
            box = portal.__dict__["_inbox"] = Inbox()
        return box


def _attach(raw: Any, limit: int) -> Any:
    if raw in (None, "", []):
        return None
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise ApiError("ATTACH_ERROR", "Incorrect attach params") from None
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > limit:
        raise ApiError("ATTACH_OVERSIZE", "You have exceeded the maximum allowable size of attach")
    blocks = value.get("BLOCKS") if isinstance(value, dict) else value
    if isinstance(blocks, dict):
        blocks = list(blocks.values())
    if not isinstance(blocks, list) or not blocks:
        raise ApiError("ATTACH_ERROR", "Incorrect attach params")
    for block in blocks:
        if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in _BLOCKS:
            raise ApiError("ATTACH_ERROR", "Incorrect attach params")
    return value


def _notify(call: Call, kind: str) -> Reply:
    user = get(call.params, "USER_ID")
    if not str(user or "").strip().isdigit() or int(str(user).strip()) <= 0:
        raise ApiError("USER_ID_EMPTY", "User ID can't be empty")
    message = str(get(call.params, "MESSAGE") or "").strip()
    if not message:
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty")
    attach = _attach(get(call.params, "ATTACH"), NOTIFY_ATTACH_LIMIT)
    tag = str(get(call.params, "TAG") or "") or None
    client_id = get(call.params, "CLIENT_ID")
    if tag and not call.via_app and not client_id:
        tag = None  # by webhook a TAG counts only with CLIENT_ID
    box = inbox(call.portal)
    uid = int(str(user).strip())
    with box.lock:
        nid = box.next_id
        box.next_id += 1
        item = {
            "id": nid,
            "kind": kind,
            "user_id": uid,
            "from_user_id": call.user_id,
            "message": message,
            "message_out": get(call.params, "MESSAGE_OUT"),
            "tag": tag,
            "sub_tag": get(call.params, "SUB_TAG"),
            "attach": attach,
            "via_app": call.via_app,
            "at": call.portal.clock.now(),
        }
        box.calls.append({"method": f"im.notify.{kind}.add", **item})
        mine = box.notifications.setdefault(uid, [])
        if tag:
            mine[:] = [n for n in mine if n["tag"] != tag]
        mine.append(item)
    return Reply(nid)


@method("im.notify.system.add")
def notify_system(call: Call) -> Reply:
    return _notify(call, "system")


@method("im.notify.personal.add")
def notify_personal(call: Call) -> Reply:
    return _notify(call, "personal")


def _fields(call: Call) -> dict[str, Any]:
    fields = get(call.params, "fields")
    return fields if isinstance(fields, dict) else {}


@method("imbot.v2.bot.register")
def bot_register(call: Call) -> Reply:
    fields = _fields(call)
    code = str(fields.get("code") or "")
    if not code:
        raise ApiError("BOT_CODE_REQUIRED", "Bot code is required")
    props = fields.get("properties")
    if not isinstance(props, dict) or not props.get("name"):
        raise ApiError("BOT_PROPERTIES_REQUIRED", "Bot properties are required")
    if not call.via_app and not fields.get("botToken"):
        raise ApiError("BOT_TOKEN_NOT_SPECIFIED", "Bot token is not specified")
    owner = "app" if call.via_app else f"hook:{fields.get('botToken')}"
    box = inbox(call.portal)
    with box.lock:
        bot = box.bots.get((owner, code))
        if bot is None:
            bot = 100_000 + len(box.bots) + 1
            box.bots[(owner, code)] = bot
        box.calls.append({"method": "imbot.v2.Bot.register", "code": code, "bot_id": bot})
    return Reply({"bot": {"id": bot, "code": code, "type": fields.get("type") or "bot",
                          "eventMode": fields.get("eventMode") or "fetch"}})  # fmt: skip


@method("imbot.v2.chat.message.send")
def bot_message(call: Call) -> Reply:
    bot = get(call.params, "botId")
    box = inbox(call.portal)
    if not str(bot or "").isdigit() or int(bot) not in box.bots.values():
        raise ApiError("BOT_NOT_FOUND", "Bot not found")
    dialog = str(get(call.params, "dialogId") or "")
    if not dialog:
        raise ApiError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    fields = _fields(call)
    message = str(fields.get("message") or "")
    if len(message) > BOT_MESSAGE_LIMIT:
        raise ApiError("MESSAGE_TOO_LONG", "Message is too long")
    attach = _attach(fields.get("attach"), BOT_ATTACH_LIMIT)
    if not message.strip() and attach is None:
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty")
    with box.lock:
        mid = box.next_id
        box.next_id += 1
        item = {"id": mid, "bot_id": int(bot), "dialog_id": dialog, "message": message,
                "attach": attach, "at": call.portal.clock.now()}  # fmt: skip
        box.messages.append(item)
        box.calls.append({"method": "imbot.v2.Chat.Message.send", **item})
    return Reply({"id": mid, "uuidMap": {}})
