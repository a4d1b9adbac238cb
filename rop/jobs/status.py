"""What the workers are doing for one portal: its jobs in the queue and its sync log.

In server mode the web process syncs nothing itself, so a page that shows a
portal's sync (the app's status page, the report's sync line, ``GET
/api/sync``) reads it here, in the shape of the single-process job's status
(rop.web.sync.SyncJob.status), so the pages and their scripts need no other
case:

- a job of the portal being run by a worker: ``running``, with the progress
  read from the store (the entity whose watermark moved last in this run and
  how many of its rows are stored so far);
- a job waiting for a worker: ``running`` too, with ``queued`` set (the page
  keeps following it);
- no job: the outcome of the portal's last run in ``sync_runs`` (``done``,
  ``failed`` with its message), or ``idle`` when it never synced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rop.bitrix.records import BY_NAME
from rop.jobs.defer import CHANGES_TASK, SYNC_TASK, portal_lock
from rop.store.db import Store


def idle_status(available: bool = True) -> dict[str, Any]:
    """SyncJob.status()'s shape when there is nothing to read (no portal, no queue)."""
    return {
        "available": available,
        "state": "idle",
        "full": False,
        "progress": None,
        "message": "",
        "started_at": None,
        "finished_at": None,
        "runs": 0,
        "queued": False,
    }


def wait_settled(status: Callable[[], dict[str, Any]], timeout: float | None = None) -> None:
    """Until ``status()`` no longer says running (no job of the portal runs or
    waits), or ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while status()["state"] == "running":
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


def active_jobs(store: Store, portal: str) -> list[dict[str, Any]]:
    """The portal's sync jobs that run or wait, running first."""
    return store.query_dicts(
        "SELECT id, task_name, CAST(status AS TEXT) AS status, args "
        "FROM procrastinate_jobs WHERE lock = ? AND task_name IN (?, ?) "
        "AND status IN ('todo', 'doing') ORDER BY status = 'doing' DESC, id",
        [portal_lock(portal), SYNC_TASK, CHANGES_TASK],
    )


def _progress(store: Store, portal: str, started_at: Any) -> dict[str, Any] | None:
    """The entity the running sync is copying and its rows stored so far."""
    moved = store.query(
        "SELECT entity FROM sync_state WHERE portal = ? AND updated_at >= ? "
        "ORDER BY updated_at DESC LIMIT 1",
        [portal, started_at],
    )
    if not moved or moved[0][0] not in BY_NAME:
        return None
    entity = BY_NAME[moved[0][0]]
    done = store.scalar(
        f"SELECT count(*) FROM {entity.table} WHERE portal = ?",  # noqa: S608
        [portal],
    )
    return {"entity": entity.name, "done": int(done or 0)}


def sync_status(store: Store, portal: str) -> dict[str, Any]:
    """The portal's sync as the workers see it, in SyncJob.status()'s shape."""
    store.use_portal(portal)  # sync_runs and sync_state are the portal's rows
    jobs = active_jobs(store, portal)
    runs = int(store.scalar("SELECT count(*) FROM sync_runs WHERE portal = ?", [portal]) or 0)
    last = store.query_dicts(
        "SELECT kind, started_at, finished_at, outcome, message FROM sync_runs "
        "WHERE portal = ? ORDER BY id DESC LIMIT 1",
        [portal],
    )
    run = last[0] if last else None
    status: dict[str, Any] = {
        "available": True,
        "state": "idle",
        "full": bool(run and run["kind"] == "full"),
        "progress": None,
        "message": "",
        "started_at": _iso(run["started_at"]) if run else None,
        "finished_at": _iso(run["finished_at"]) if run else None,
        "runs": runs,
        "queued": False,
    }
    if jobs:
        job = jobs[0]
        args = job["args"] if isinstance(job["args"], dict) else {}
        status["state"] = "running"
        status["full"] = bool(args.get("full"))
        if job["status"] == "todo":
            status["queued"] = True
        elif run is not None and run["outcome"] == "running":
            status["progress"] = _progress(store, portal, run["started_at"])
            status["finished_at"] = None
        return status
    if run is None:
        return status
    if run["outcome"] == "ok":
        status["state"] = "done"
    elif run["outcome"] == "running":
        # A run without a job: its worker died and the job is not back yet.
        status["state"] = "running"
    else:
        status["state"] = "failed"
        status["message"] = run["message"] or str(run["outcome"])
    return status
