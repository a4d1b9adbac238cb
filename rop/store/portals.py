"""What a store knows of each of its portals: last sync, size and state (`rop portals`)."""

from __future__ import annotations

from typing import Any

from rop.store.db import Store

# The tables whose row counts say how big a portal's copy is.
SIZED = ("deals", "leads", "companies", "contacts", "calls", "activities")


def portal_summaries(store: Store) -> list[dict[str, Any]]:
    """One dict per portal: its key, state, last sync run and row counts.

    State: ``running`` (a sync has started and not ended), ``ok``/``failed``/
    ``interrupted`` (the last run's outcome), ``loaded`` (never synced: a
    snapshot load). Each portal is read as that portal (row-level security on
    PostgreSQL lets a handle see one portal at a time).
    """
    out = []
    keys = [r[0] for r in store.query("SELECT portal FROM portals ORDER BY portal")]
    for key in keys:
        store.use_portal(key)
        run = store.query_dicts(
            "SELECT kind, started_at, finished_at, outcome, message, requests "
            "FROM sync_runs WHERE portal = ? ORDER BY id DESC LIMIT 1",
            [key],
        )
        last_ok = store.scalar(
            "SELECT max(finished_at) FROM sync_runs WHERE portal = ? AND outcome = 'ok'", [key]
        )
        sizes = {
            t: int(store.scalar(f"SELECT count(*) FROM {t} WHERE portal = ?", [key]) or 0)  # noqa: S608
            for t in SIZED
        }
        last = run[0] if run else None
        out.append(
            {
                "portal": key,
                "state": (last["outcome"] or "running") if last else "loaded",
                "last_sync": last_ok.isoformat() + "Z" if last_ok else None,
                "last_run": (
                    {
                        k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v)
                        for k, v in last.items()
                    }
                    if last
                    else None
                ),
                **sizes,
            }
        )
    return out
