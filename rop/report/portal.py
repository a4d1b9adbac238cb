"""Which portal a report is about, and what the store knows of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rop.metrics.errors import ReportInputError
from rop.store.db import Store


@dataclass(frozen=True)
class PortalRow:
    key: str
    url: str
    timezone: str
    base_currency: str
    updated_at: datetime | None

    def link(self, path: str) -> str:
        return self.url.rstrip("/") + path

    def as_json(self) -> dict:
        return {"key": self.key, "url": self.url, "timezone": self.timezone}


def select_portal(store: Store, portal: str | None = None) -> PortalRow:
    """The store's one portal, or the named one; several portals need a name."""
    rows = store.query(
        "SELECT portal, url, timezone, base_currency, updated_at FROM portals ORDER BY portal"
    )
    if portal is not None:
        rows = [r for r in rows if r[0] == portal]
        if not rows:
            raise ReportInputError("unknown_portal", portal=portal)
    elif not rows:
        raise ReportInputError("no_portal")
    elif len(rows) > 1:
        names = ", ".join(r[0] for r in rows)
        raise ReportInputError("several_portals", portals=names)
    key, url, tz, base, updated = rows[0]
    # From here on the store serves this portal's rows only (PostgreSQL's
    # row-level security; DuckDB notes it): a query that forgets its portal
    # still cannot read another portal's records.
    store.use_portal(key)
    return PortalRow(key, url or f"https://{key}", tz or "UTC", base or "RUB", updated)


def data_as_of(store: Store, portal: PortalRow) -> str | None:
    """When the data was last copied: the last successful sync, else the last load."""
    last = store.scalar(
        "SELECT max(finished_at) FROM sync_runs WHERE portal = ? "
        "AND lower(coalesce(outcome, '')) IN ('ok', 'success', 'done', 'succeeded')",
        [portal.key],
    )
    moment = last or portal.updated_at
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).isoformat()


def now_utc() -> datetime:
    return datetime.now(UTC)
