"""Send what is due: ``send_due_digests`` for the server's scheduler and a periodic job.

Each call looks at every subscription of one portal: the latest slot at or
before ``now`` (in the reader's zone) that nobody claimed yet is claimed and
sent, channel by channel; rows due for another attempt (a transient
failure's backoff ran out, or a sender died mid-send) are taken again.
Calling it every minute, from one server or several workers, sends each
slot once (rop.digests.sends).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from rop.digests import sends
from rop.digests.chat import ChatMessage, render_chat
from rop.digests.content import Digest, Links, build_digest
from rop.digests.delivery import DeliveryError
from rop.digests.errors import DigestInputError
from rop.digests.mail import MailSender, build_message, message_id
from rop.digests.schedule import last_slot, reader_zone, slot_key
from rop.digests.subscriptions import Subscription, get, listed
from rop.metrics.errors import AccessDenied, ReportInputError
from rop.report.portal import select_portal
from rop.store.db import Store

log = logging.getLogger("rop.digests")


class ChatSender(Protocol):
    def send(self, user_id: int, msg: ChatMessage) -> str: ...


@dataclass(frozen=True)
class DigestOptions:
    skip_empty: bool = True  # a digest with nothing in it is logged as skipped
    rank: bool = False  # a manager sees their place (the administrator allows it)
    grace: timedelta = timedelta(hours=6)  # a slot older than this when we get to it: missed
    backoff: timedelta = timedelta(minutes=1)  # after a transient failure; doubles each time
    max_attempts: int = 5
    links: Links = field(default_factory=Links)


@dataclass(frozen=True)
class Outcome:
    subscription_id: int
    user_id: int
    slot: str
    channel: str
    outcome: str  # sent | skipped | retry | failed | missed
    reason: str | None = None


def _utc(now: datetime | None) -> datetime:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(second=0, microsecond=0) if now is None else moment


class _Run:
    def __init__(self, store: Store, portal: str, now: datetime, chat: ChatSender | None,
                 mail: MailSender | None, options: DigestOptions) -> None:  # fmt: skip
        self.store, self.portal, self.now = store, portal, now
        self.chat, self.mail, self.options = chat, mail, options
        self.digests: dict[tuple[int, date], Digest] = {}
        row = select_portal(store, portal)
        self.portal_zone = row.timezone
        self.people = {
            int(uid): (zone, email)
            for uid, zone, email in store.query(
                "SELECT id, time_zone, email FROM users WHERE portal = ?", [portal]
            )
        }

    def zone(self, user_id: int) -> Any:
        return reader_zone((self.people.get(user_id) or (None, None))[0], self.portal_zone)

    def digest(self, sub: Subscription, day: date) -> Digest:
        key = (sub.id, day)
        if key not in self.digests:
            self.digests[key] = build_digest(
                self.store, sub, day, links=self.options.links, rank=self.options.rank
            )
        return self.digests[key]

    def deliver(self, sub: Subscription, key: sends.SendKey, d: Digest) -> None:
        if key.channel == "chat":
            if self.chat is None:
                raise DeliveryError(
                    "chat is not set up (no webhook or installed app)", transient=False
                )
            self.chat.send(sub.user_id, render_chat(d))
            return
        address = (self.people.get(sub.user_id) or (None, None))[1]
        if not address:
            raise DeliveryError(f"user {sub.user_id} has no e-mail in Bitrix24", transient=False)
        if self.mail is None:
            raise DeliveryError("e-mail is not set up (ROP_SMTP_HOST)", transient=False)
        self.mail.send(build_message(d, address, self.mail.smtp,
                                     message_id(key.portal, sub.id, key.slot)))  # fmt: skip

    def attempt(
        self, sub: Subscription, key: sends.SendKey, day: date, *, force: bool = False
    ) -> Outcome:
        store, now, opts = self.store, self.now, self.options
        tries = sends.attempts(store, key) + 1
        state, reason = "sent", None
        next_at: datetime | None = None
        try:
            d = self.digest(sub, day)
            if d.empty and opts.skip_empty and not force:
                state, reason = "skipped", "nothing in the digest"
            else:
                self.deliver(sub, key, d)
        except DeliveryError as exc:
            reason = exc.reason
            if exc.transient and tries < opts.max_attempts:
                state = "retry"
                next_at = now + opts.backoff * 2 ** (tries - 1)
                reason = (
                    f"{reason}; try {tries} of {opts.max_attempts}, next at {next_at:%H:%M} UTC"
                )
            else:
                state = "failed"
        except (ReportInputError, DigestInputError, AccessDenied) as exc:
            # The saved filter no longer fits (a department gone, out of the scope).
            state, reason = "failed", str(exc)
        except Exception as exc:  # a bug must not stop the other digests
            log.exception("digest %s failed", sub.id)
            state, reason = "failed", f"{type(exc).__name__}: {exc}"
        sends.finish(store, key, state, now, reason=reason, tries=tries, next_attempt_at=next_at)
        sends.log(store, key, state, now, user_id=sub.user_id, reason=reason)
        log.info("digest %s %s %s %s", sub.id, key.slot, key.channel, state,
                 extra={"event": "digest", "portal": key.portal, "subscription": sub.id,
                        "channel": key.channel, "outcome": state})  # fmt: skip
        return Outcome(sub.id, sub.user_id, key.slot, key.channel, state, reason)

    def gone(self, key: sends.SendKey) -> Outcome:
        reason = "the subscription was removed"
        sends.finish(self.store, key, "failed", self.now, reason=reason, tries=0)
        sends.log(self.store, key, "failed", self.now, user_id=None, reason=reason)
        return Outcome(key.subscription_id, 0, key.slot, key.channel, "failed", reason)


def send_due_digests(
    store: Store,
    now: datetime | None = None,
    *,
    portal: str | None = None,
    chat: ChatSender | None = None,
    mail: MailSender | None = None,
    options: DigestOptions | None = None,
) -> list[Outcome]:
    """Send every digest of ``portal`` due at ``now`` (UTC; default: this minute).

    Safe to call often and from several processes: a slot is claimed by one
    insert (its key refuses the second), so it goes out once. ``portal``
    None is the store's one portal; on PostgreSQL the store must already be
    bound to it (``Store.use_portal``). Returns what happened, one Outcome
    per channel touched.
    """
    opts = options or DigestOptions()
    moment = _utc(now)
    key_of = select_portal(store, portal).key
    subs = listed(store, key_of)
    again = sends.due_again(store, key_of, moment)
    if not subs and not again:
        return []
    run = _Run(store, key_of, moment, chat, mail, opts)
    out: list[Outcome] = []
    for sub in subs:
        slot = last_slot(sub, moment, run.zone(sub.user_id))
        if slot is None:
            continue
        day, at = slot
        if at < sub.created_at:
            continue  # subscribed after this slot: the next one is the first
        name = slot_key(day, sub.at_time)
        for channel in sub.channels:
            key = sends.SendKey(key_of, sub.id, name, channel)
            if moment - at > opts.grace:
                if sends.claim(store, key, moment, state="missed"):
                    reason = f"the server was not running at {name} (more than {opts.grace} ago)"
                    sends.finish(store, key, "missed", moment, reason=reason, tries=0)
                    sends.log(store, key, "missed", moment, user_id=sub.user_id, reason=reason)
                    out.append(Outcome(sub.id, sub.user_id, name, channel, "missed", reason))
                continue
            if sends.claim(store, key, moment):
                out.append(run.attempt(sub, key, day))
    for key in again:
        if not sends.take_again(store, key, moment):
            continue  # another worker took it
        try:
            sub = get(store, key_of, key.subscription_id)
        except DigestInputError:
            out.append(run.gone(key))
            continue
        out.append(run.attempt(sub, key, date.fromisoformat(key.slot.split()[-2])))
    return out


def send_now(
    store: Store,
    sub_id: int,
    now: datetime | None = None,
    *,
    portal: str | None = None,
    chat: ChatSender | None = None,
    mail: MailSender | None = None,
    options: DigestOptions | None = None,
) -> list[Outcome]:
    """Send subscription ``sub_id`` now, whatever its schedule (``rop digests send-now``).

    The period is counted from the reader's local today; the slot is this
    minute, so a double click sends once. An empty digest is sent anyway:
    someone asked for it.
    """
    opts = options or DigestOptions()
    moment = _utc(now)
    key_of = select_portal(store, portal).key
    sub = get(store, key_of, sub_id)
    run = _Run(store, key_of, moment, chat, mail, opts)
    local = moment.replace(tzinfo=UTC).astimezone(run.zone(sub.user_id))
    day = local.date()
    name = f"now {slot_key(day, local.strftime('%H:%M'))}"
    out = []
    for channel in sub.channels:
        key = sends.SendKey(key_of, sub.id, name, channel)
        if sends.claim(store, key, moment):
            out.append(run.attempt(sub, key, day, force=True))
        else:
            out.append(
                Outcome(sub.id, sub.user_id, name, channel, "skipped", "already sent this minute")
            )
    return out
