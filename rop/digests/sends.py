"""Each slot goes out once: a store row per (subscription, slot, channel).

Claiming a slot inserts its row; the primary key refuses a second insert,
whoever tries it (a restarted server in the same minute, another worker in
server mode), so only the claimant sends. A row's states:

- ``sending``: claimed, the send under way. A row left ``sending`` longer
  than ``LEASE`` means the process died mid-send: it is taken again like a
  retry (chat: the TAG makes the resend replace the first; e-mail: the same
  Message-ID, docs/DIGESTS.md "Once per slot").
- ``retry``: a transient failure; taken again at ``next_attempt_at``.
- ``sent``, ``skipped`` (nothing in the digest), ``failed``, ``missed``
  (the slot passed while the server was down longer than the grace).

The delivery log (``digest_log``) keeps one line per outcome, failures that
will be retried included, for the settings page.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rop.store.db import Store

LEASE = timedelta(minutes=15)
FINAL = ("sent", "skipped", "failed", "missed")


@dataclass(frozen=True)
class SendKey:
    portal: str
    subscription_id: int
    slot: str
    channel: str

    def where(self) -> tuple[str, list[Any]]:
        return (
            "portal = ? AND subscription_id = ? AND slot = ? AND channel = ?",
            [self.portal, self.subscription_id, self.slot, self.channel],
        )


def claim(store: Store, key: SendKey, now: datetime, state: str = "sending") -> bool:
    """Insert the slot's row; True only for the one caller whose insert made it."""
    rows = store.query(
        "INSERT INTO digest_sends (portal, subscription_id, slot, channel, state, attempts, "
        "claimed_at) VALUES (?, ?, ?, ?, ?, 0, ?) "
        "ON CONFLICT DO NOTHING RETURNING slot",
        [key.portal, key.subscription_id, key.slot, key.channel, state, now],
    )
    return bool(rows)


def take_again(store: Store, key: SendKey, now: datetime) -> bool:
    """Take a row due for another attempt (retry due, or a lease run out); True if taken.

    One UPDATE with the condition in it, so two workers cannot both take it.
    """
    where, params = key.where()
    rows = store.query(
        f"UPDATE digest_sends SET state = 'sending', claimed_at = ? WHERE {where} "  # noqa: S608
        "AND ((state = 'retry' AND next_attempt_at <= ?) OR (state = 'sending' AND claimed_at < ?)) "
        "RETURNING slot",
        [now, *params, now, now - LEASE],
    )
    return bool(rows)


def due_again(store: Store, portal: str, now: datetime) -> list[SendKey]:
    """Rows waiting for another attempt now."""
    rows = store.query(
        "SELECT subscription_id, slot, channel FROM digest_sends WHERE portal = ? AND "
        "((state = 'retry' AND next_attempt_at <= ?) OR (state = 'sending' AND claimed_at < ?)) "
        "ORDER BY claimed_at",
        [portal, now, now - LEASE],
    )
    return [SendKey(portal, int(s), str(slot), str(c)) for s, slot, c in rows]


def attempts(store: Store, key: SendKey) -> int:
    where, params = key.where()
    value = store.scalar(f"SELECT attempts FROM digest_sends WHERE {where}", params)  # noqa: S608
    return int(value or 0)


def finish(
    store: Store,
    key: SendKey,
    state: str,
    now: datetime,
    *,
    reason: str | None = None,
    tries: int,
    next_attempt_at: datetime | None = None,
) -> None:
    where, params = key.where()
    store.execute(
        f"UPDATE digest_sends SET state = ?, attempts = ?, next_attempt_at = ?, "  # noqa: S608
        f"finished_at = ?, reason = ? WHERE {where}",
        [state, tries, next_attempt_at, now if state in FINAL else None, reason, *params],
    )


def log(
    store: Store,
    key: SendKey,
    outcome: str,
    now: datetime,
    *,
    user_id: int | None,
    reason: str | None = None,
) -> None:
    """One line of the delivery log (IDs random: several workers write at once)."""
    store.upsert(
        "digest_log",
        [
            {
                "portal": key.portal,
                "id": secrets.randbits(62),
                "logged_at": now,
                "subscription_id": key.subscription_id,
                "user_id": user_id,
                "slot": key.slot,
                "channel": key.channel,
                "outcome": outcome,
                "reason": (reason or "")[:500] or None,
            }
        ],
    )


def log_lines(store: Store, portal: str, limit: int = 100) -> list[dict[str, Any]]:
    """The latest lines of the delivery log, newest first."""
    return store.query_dicts(
        "SELECT logged_at, subscription_id, user_id, slot, channel, outcome, reason FROM digest_log "
        "WHERE portal = ? ORDER BY logged_at DESC, id DESC LIMIT ?",
        [portal, limit],
    )
