"""Which portal a report is about, and what the store knows of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from rop.metrics.errors import ReportInputError
from rop.report.periods import local_today, zone
from rop.store.db import Store


@dataclass(frozen=True)
class PortalRow:
    key: str
    url: str
    timezone: str
    base_currency: str
    updated_at: datetime | None
    clock: datetime | None = None  # the portal's own time at the last copy (UTC)

    def today(self) -> date:
        """The report's "today" for this portal (see :func:`portal_today`)."""
        return portal_today(self.timezone, self.clock or self.updated_at)

    def link(self, path: str) -> str:
        return self.url.rstrip("/") + path

    def as_json(self) -> dict:
        return {"key": self.key, "url": self.url, "timezone": self.timezone}


def select_portal(store: Store, portal: str | None = None) -> PortalRow:
    """The store's one portal, or the named one; several portals need a name.

    A report's first step: the store's remembered lookups are those of the data
    as it is now (PostgreSQL reads its data version here, rop.store.memo)."""
    store.refresh()
    names = [r[0] for r in store.query_remembered("SELECT portal FROM portals ORDER BY portal")]
    if portal is not None:
        if portal not in names:
            raise ReportInputError("unknown_portal", portal=portal)
        key = portal
    elif not names:
        raise ReportInputError("no_portal")
    elif len(names) > 1:
        raise ReportInputError("several_portals", portals=", ".join(names))
    else:
        key = names[0]
    # From here on the store serves this portal's rows only (PostgreSQL's
    # row-level security; DuckDB notes it): a query that forgets its portal
    # still cannot read another portal's records. (PostgreSQL reads the
    # portal's data version with it: the row below is remembered under it.)
    if store.portal != key:
        store.use_portal(key)
    found = store.query_remembered(
        "SELECT url, timezone, base_currency, updated_at, clock FROM portals WHERE portal = ?",
        [key],
    )
    if not found:  # removed a moment ago
        raise ReportInputError("unknown_portal", portal=key)
    url, tz, base, updated, clock = found[0]
    return PortalRow(key, url or f"https://{key}", tz or "UTC", base or "RUB", updated, clock)


def portal_today(timezone: str | None, clock: datetime | None) -> date:
    """Today as the report sees it: the portal's date, in its zone, at its ``clock``.

    The one source of "today" for presets ("this month"), overdue deals and
    the "now" figures (docs/METRICS_DECISIONS.md "Today"): the portal's own
    clock as the store last saw it (a sync: the time Bitrix24 reported in
    its replies; a snapshot: ``portal.json``'s ``now``), so a report of the
    same data is the same whatever day it is run. The machine's clock is a
    last resort for a portal row that never recorded one (written by hand).
    ``--today`` (``ReportFilter.today``) overrides it.
    """
    return local_today(zone(timezone), clock)


def data_as_of(store: Store, portal: PortalRow) -> str | None:
    """When the data was last copied: the last successful sync, else the last load."""
    found = store.query_remembered(
        "SELECT max(finished_at) FROM sync_runs WHERE portal = ? "
        "AND lower(coalesce(outcome, '')) IN ('ok', 'success', 'done', 'succeeded')",
        [portal.key],
    )
    last = found[0][0] if found else None
    # A loaded snapshot: the portal's clock when it was taken, not the load time.
    moment = last or portal.clock or portal.updated_at
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).isoformat()
