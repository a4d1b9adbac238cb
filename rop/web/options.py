"""What the filter bar offers, read from the store: the portal, its pipelines,
stages, lead statuses, departments and users. All values are bound parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from rop.store.db import Store


@dataclass
class Options:
    portal: str | None
    portal_url: str | None
    timezone: str
    currency: str
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)  # every pipeline's stages
    statuses: list[dict[str, Any]] = field(default_factory=list)  # lead statuses
    departments: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    data_as_of: datetime | None = None
    clock: datetime | None = None  # the portal's clock at the last copy (UTC)

    def today(self) -> date:
        """Today on the portal's clock (the report's own function): presets count from it."""
        from rop.metrics.errors import ReportInputError
        from rop.report.portal import portal_today

        try:
            return portal_today(self.timezone, self.clock)
        except ReportInputError:  # a zone this machine does not know
            return portal_today("UTC", self.clock)

    def stages_of(self, pipelines: tuple[int, ...]) -> list[dict[str, Any]]:
        chosen = set(pipelines) or {p["id"] for p in self.pipelines}
        return [s for s in self.stages if s["category_id"] in chosen]

    def as_json(self) -> dict[str, Any]:
        return {
            "portal": self.portal,
            "portal_url": self.portal_url,
            "timezone": self.timezone,
            "currency": self.currency,
            "pipelines": self.pipelines,
            "stages": self.stages,
            "statuses": self.statuses,
            "departments": self.departments,
            "users": self.users,
        }


def stage_entity(category_id: int) -> str:
    """Bitrix24 names the default pipeline's stages DEAL_STAGE, others DEAL_STAGE_<n>."""
    return "DEAL_STAGE" if category_id == 0 else f"DEAL_STAGE_{category_id}"


def load_options(store: Store, portal: str | None = None) -> Options:
    """The filter bar's choices for ``portal`` (default: the store's latest portal)."""
    rows = store.query_dicts(
        "SELECT portal, url, timezone, base_currency, updated_at, clock FROM portals "
        "ORDER BY updated_at DESC NULLS LAST, portal"
    )
    if portal is not None:
        rows = [r for r in rows if r["portal"] == portal]
    if not rows:
        return Options(None, None, "UTC", "RUB")
    p = rows[0]
    key = p["portal"]
    store.use_portal(key)  # PostgreSQL: the session reads this portal's rows only
    opts = Options(
        portal=key,
        portal_url=(p["url"] or f"https://{key}").rstrip("/"),
        timezone=p["timezone"] or "UTC",
        currency=p["base_currency"] or "RUB",
        clock=p["clock"] or p["updated_at"],
    )
    opts.pipelines = store.query_dicts(
        "SELECT id, name, sort, is_default FROM pipelines WHERE portal = ? ORDER BY sort, id",
        [key],
    )
    if not opts.pipelines:
        # A portal without categories still has the default pipeline 0.
        opts.pipelines = [{"id": 0, "name": "Общая", "sort": 0, "is_default": True}]
    stages = store.query_dicts(
        "SELECT entity_id, status_id, name, sort, category_id, semantics FROM statuses "
        "WHERE portal = ? AND (entity_id = 'DEAL_STAGE' OR entity_id LIKE 'DEAL_STAGE_%') "
        "ORDER BY category_id, sort, status_id",
        [key],
    )
    for s in stages:
        if s["category_id"] is None:
            s["category_id"] = 0 if s["entity_id"] == "DEAL_STAGE" else int(s["entity_id"][11:])
    opts.stages = stages
    opts.statuses = store.query_dicts(
        "SELECT status_id, name, sort, semantics FROM statuses "
        "WHERE portal = ? AND entity_id = 'STATUS' ORDER BY sort, status_id",
        [key],
    )
    opts.departments = store.query_dicts(
        "SELECT id, name, parent_id, head_id, sort FROM departments "
        "WHERE portal = ? ORDER BY sort, id",
        [key],
    )
    opts.users = store.query_dicts(
        "SELECT id, trim(coalesce(name, '') || ' ' || coalesce(last_name, '')) AS name, "
        "active, department_id FROM users WHERE portal = ? ORDER BY last_name, name, id",
        [key],
    )
    opts.data_as_of = store.scalar(
        "SELECT max(finished_at) FROM sync_runs WHERE portal = ? AND outcome = 'ok'", [key]
    ) or store.scalar("SELECT coalesce(clock, updated_at) FROM portals WHERE portal = ?", [key])
    return opts


def names(opts: Options) -> dict[tuple[str, object], str]:
    """(kind, ID) -> name, for ``ReportFilter.describe``'s sentence (as
    ``rop.report.context.store_names``, but from options already loaded)."""
    out: dict[tuple[str, object], str] = {}
    for kind, rows, ident in (
        ("pipeline", opts.pipelines, "id"),
        ("stage", opts.stages, "status_id"),
        ("status", opts.statuses, "status_id"),
        ("department", opts.departments, "id"),
        ("user", opts.users, "id"),
    ):
        for row in rows:
            if row.get("name"):
                out[(kind, row[ident])] = str(row["name"])
    from rop.report.context import stage_labels

    labels = stage_labels(
        ((s["status_id"], s.get("name"), s["category_id"]) for s in opts.stages),
        {p["id"]: p["name"] for p in opts.pipelines},
    )
    out.update({("stage", sid): label for sid, label in labels.items()})
    return out


def department_tree(departments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Departments in the portal's tree order, each with its ``depth`` (0 for a
    top one): a parent, then its children by sort, so the picker can indent
    them. A department whose parent is unknown (or out of the viewer's
    scope) stands at the top; a cycle in bad data cannot loop."""
    ids = {d["id"] for d in departments}
    children: dict[Any, list[dict[str, Any]]] = {}
    for d in departments:
        parent = d.get("parent_id") if d.get("parent_id") in ids else None
        children.setdefault(parent, []).append(d)
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()

    def walk(parent: Any, depth: int) -> None:
        for d in children.get(parent, []):
            if d["id"] in seen:
                continue
            seen.add(d["id"])
            out.append({**d, "depth": depth})
            walk(d["id"], depth + 1)

    walk(None, 0)
    out += [{**d, "depth": 0} for d in departments if d["id"] not in seen]
    return out
