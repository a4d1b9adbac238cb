"""Write a demo portal snapshot folder (CONTRACT.md §1): ``generate(out, seed=, deals=, …)``.

Deterministic: every random choice comes from ``random.Random`` streams
seeded by the arguments, and "now" defaults to a fixed moment, so the same
arguments give byte-identical files. Streaming: records go to disk one at a
time; only compact per-record arrays (creation times, links) stay in memory,
so a million deals fit in a few hundred MB.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from random import Random

from rop.demo import catalog, staff
from rop.demo.clients import write_clients
from rop.demo.clock import TZ, Clock, local_seconds
from rop.demo.jsonfile import write_json
from rop.demo.sales import SCRIPT_TITLE, Sales, make_plan
from rop.demo.staff import Roster
from rop.demo.timeline import Timeline

__all__ = ["generate", "SCRIPT_TITLE", "DEFAULT_NOW", "DOMAIN"]

DOMAIN = "demo-rop.bitrix24.ru"
DEFAULT_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=TZ)
MAX_DEALS = 10_000_000
MAX_MONTHS = 120


def webhook_token(seed: int) -> str:
    return hashlib.sha256(f"rop-demo:{seed}".encode()).hexdigest()[:16]


def generate(
    out: str | Path,
    *,
    seed: int = 1,
    deals: int = 20000,
    months: int = 12,
    now: datetime | None = None,
) -> None:
    """Write a demo portal with ``deals`` deals over ``months`` months up to ``now``.

    About deals/2 leads, deals/4 companies, deals/2 contacts, 4 history rows
    and 2 calls per deal. Raises ValueError naming a bad argument.
    """
    if not 1 <= deals <= MAX_DEALS:
        raise ValueError(f"deals must be between 1 and {MAX_DEALS}, got {deals}")
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}, got {months}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    clock = Clock(local_seconds(now or DEFAULT_NOW), months)
    _write_directories(folder, seed, clock)
    roster = Roster(clock)
    clients = write_clients(
        folder, Random(f"{seed}:clients"), clock, roster, deals // 4, deals // 2
    )
    plan = make_plan(Random(f"{seed}:plan"), clock, deals, deals // 2)
    timeline = Timeline(folder, clock)
    try:
        Sales(Random(f"{seed}:sales"), clock, roster, clients, plan, timeline).run()
        timeline.close()
    except BaseException:
        timeline.abort()
        raise


def _write_directories(folder: Path, seed: int, clock: Clock) -> None:
    portal = {
        "domain": DOMAIN,
        "timezone": "Europe/Moscow",
        "base_currency": "RUB",
        "admins": [staff.ADMIN],
        "webhook": {"user_id": staff.ADMIN, "token": webhook_token(seed)},
        "now": clock.iso(clock.now),
    }
    write_json(folder / "portal.json", portal)
    write_json(folder / "user.get.json", staff.user_records(clock))
    write_json(folder / "department.get.json", staff.department_records())
    write_json(folder / "crm.category.list.json", catalog.category_records())
    write_json(folder / "crm.status.list.json", catalog.status_records())
    write_json(folder / "crm.currency.list.json", catalog.currency_records())
