"""Ordered schema migrations; each runs once and is recorded.

Every table is keyed by ``portal`` (the portal's domain) and the record's
Bitrix24 ID, so one store can hold several portals. Times are stored as UTC
``TIMESTAMP`` (converted from the offset Bitrix24 sends) and planned dates as
``DATE`` in the portal's local calendar. SQL stays in the common subset of
DuckDB and PostgreSQL.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

# Columns where Bitrix24 spells "nothing" as "" (codes) or 0 (links to a record
# or a user); rop.bitrix.values reads both as NULL since migration 6, which
# clears what older versions stored. Keep in step with rop/bitrix/records.py.
_BLANK_CODES: dict[str, tuple[str, ...]] = {
    "deals": ("type_id", "stage_id", "stage_semantic", "currency_id", "source_id"),
    "leads": ("title", "status_id", "status_semantic", "currency_id", "source_id"),
    "companies": ("company_type", "industry"),
    "contacts": ("source_id",),
    "deal_stage_history": ("stage_semantic", "stage_id"),
    "lead_status_history": ("status_semantic", "status_id"),
    "calls": ("call_id", "portal_number", "phone_number", "call_failed_code", "crm_entity_type"),
    "activities": ("provider_id", "provider_type_id"),
}
_ZERO_REFS: dict[str, tuple[str, ...]] = {
    "deals": ("assigned_by_id", "created_by_id", "moved_by_id", "company_id", "contact_id",
              "lead_id"),
    "leads": ("assigned_by_id", "created_by_id", "moved_by_id", "company_id", "contact_id"),
    "companies": ("assigned_by_id", "created_by_id", "lead_id"),
    "contacts": ("company_id", "lead_id", "assigned_by_id", "created_by_id"),
    "deal_stage_history": ("owner_id",),
    "lead_status_history": ("owner_id",),
    "calls": ("portal_user_id", "crm_entity_id", "crm_activity_id"),
    "activities": ("owner_id", "responsible_id"),
    "users": ("department_id",),
    "departments": ("parent_id", "head_id"),
}  # fmt: skip


def _nothing_is_null() -> str:
    """One UPDATE per column, each touching only the rows that need it.

    Table and column names come from the constants above, never from input.
    """
    out = []
    for table, columns in _BLANK_CODES.items():
        for c in columns:
            out.append(f"UPDATE {table} SET {c} = NULL WHERE trim({c}) = '';")  # noqa: S608
    for table, columns in _ZERO_REFS.items():
        for c in columns:
            out.append(f"UPDATE {table} SET {c} = NULL WHERE {c} = 0;")  # noqa: S608
    return "\n".join(out)


def _stage_tables(entity: str) -> str:
    """The stored stage facts' tables of ``entity`` (deal or lead): one shape for both."""
    return f"""CREATE TABLE {entity}_stage_visits (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    manager_id BIGINT,
    created TIMESTAMP,
    pipe BIGINT,
    stage TEXT,
    semantic TEXT,
    entered TIMESTAMP,
    left_at TIMESTAMP,
    sort INTEGER,
    k TIMESTAMP,
    again BOOLEAN,
    n BIGINT NOT NULL,  -- the visit's place among the record's
    PRIMARY KEY (portal, id, n)
);
CREATE TABLE {entity}_stage_open (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    manager_id BIGINT,
    pipe BIGINT,
    stage TEXT,
    semantic TEXT,
    entered TIMESTAMP,
    n BIGINT NOT NULL,  -- the visit's (rop/store/stage_facts.py)
    PRIMARY KEY (portal, id, n)
);
CREATE TABLE {entity}_stage_reach (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    manager_id BIGINT,
    pipe BIGINT,
    created TIMESTAMP,
    reach INTEGER,
    reach_stage TEXT,
    n BIGINT NOT NULL,  -- the pipeline's place among the record's
    PRIMARY KEY (portal, id, n)
);
CREATE TABLE {entity}_stage_open_agg (
    portal TEXT NOT NULL,
    grp TEXT NOT NULL,  -- pipeline|manager|stage, NULLs marked
    pipe BIGINT,
    stage TEXT,
    manager_id BIGINT,
    n BIGINT,
    entered_sum DOUBLE PRECISION,
    entered_median DOUBLE PRECISION,
    PRIMARY KEY (portal, grp)
);
"""


MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "core tables",
        """
CREATE TABLE portals (
    portal TEXT PRIMARY KEY,
    url TEXT,
    timezone TEXT,
    base_currency TEXT,
    webhook_user_id BIGINT,
    updated_at TIMESTAMP
);
CREATE TABLE users (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    active BOOLEAN,
    name TEXT,
    last_name TEXT,
    second_name TEXT,
    email TEXT,
    work_position TEXT,
    department_id BIGINT,
    department_ids TEXT,
    is_admin BOOLEAN,
    PRIMARY KEY (portal, id)
);
CREATE TABLE departments (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT,
    parent_id BIGINT,
    head_id BIGINT,
    sort INTEGER,
    PRIMARY KEY (portal, id)
);
CREATE TABLE pipelines (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT,
    sort INTEGER,
    is_default BOOLEAN,
    PRIMARY KEY (portal, id)
);
CREATE TABLE statuses (
    portal TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    status_id TEXT NOT NULL,
    name TEXT,
    sort INTEGER,
    category_id BIGINT,
    semantics TEXT,
    PRIMARY KEY (portal, entity_id, status_id)
);
CREATE TABLE currencies (
    portal TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_cnt DOUBLE PRECISION,
    amount DOUBLE PRECISION,
    base BOOLEAN,
    PRIMARY KEY (portal, currency)
);
CREATE TABLE deals (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    title TEXT,
    type_id TEXT,
    category_id BIGINT,
    stage_id TEXT,
    stage_semantic TEXT,
    opportunity DOUBLE PRECISION,
    currency_id TEXT,
    assigned_by_id BIGINT,
    created_by_id BIGINT,
    moved_by_id BIGINT,
    company_id BIGINT,
    contact_id BIGINT,
    lead_id BIGINT,
    source_id TEXT,
    closed BOOLEAN,
    opened BOOLEAN,
    date_create TIMESTAMP,
    date_modify TIMESTAMP,
    moved_time TIMESTAMP,
    begindate DATE,
    closedate DATE,
    PRIMARY KEY (portal, id)
);
CREATE TABLE leads (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    title TEXT,
    name TEXT,
    last_name TEXT,
    status_id TEXT,
    status_semantic TEXT,
    opportunity DOUBLE PRECISION,
    currency_id TEXT,
    assigned_by_id BIGINT,
    created_by_id BIGINT,
    moved_by_id BIGINT,
    company_id BIGINT,
    contact_id BIGINT,
    source_id TEXT,
    opened BOOLEAN,
    date_create TIMESTAMP,
    date_modify TIMESTAMP,
    moved_time TIMESTAMP,
    date_closed TIMESTAMP,
    PRIMARY KEY (portal, id)
);
CREATE TABLE companies (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    title TEXT,
    company_type TEXT,
    industry TEXT,
    assigned_by_id BIGINT,
    created_by_id BIGINT,
    lead_id BIGINT,
    is_my_company BOOLEAN,
    opened BOOLEAN,
    date_create TIMESTAMP,
    date_modify TIMESTAMP,
    PRIMARY KEY (portal, id)
);
CREATE TABLE contacts (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT,
    last_name TEXT,
    second_name TEXT,
    post TEXT,
    company_id BIGINT,
    lead_id BIGINT,
    source_id TEXT,
    assigned_by_id BIGINT,
    created_by_id BIGINT,
    opened BOOLEAN,
    date_create TIMESTAMP,
    date_modify TIMESTAMP,
    PRIMARY KEY (portal, id)
);
CREATE TABLE deal_stage_history (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    type_id INTEGER,
    owner_id BIGINT,
    created_time TIMESTAMP,
    category_id BIGINT,
    stage_semantic TEXT,
    stage_id TEXT,
    PRIMARY KEY (portal, id)
);
CREATE TABLE lead_status_history (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    type_id INTEGER,
    owner_id BIGINT,
    created_time TIMESTAMP,
    status_semantic TEXT,
    status_id TEXT,
    PRIMARY KEY (portal, id)
);
CREATE TABLE calls (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    call_id TEXT,
    portal_user_id BIGINT,
    portal_number TEXT,
    phone_number TEXT,
    call_type INTEGER,
    call_duration INTEGER,
    call_start_date TIMESTAMP,
    call_failed_code TEXT,
    crm_entity_type TEXT,
    crm_entity_id BIGINT,
    crm_activity_id BIGINT,
    PRIMARY KEY (portal, id)
);
CREATE TABLE activities (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    type_id INTEGER,
    provider_id TEXT,
    provider_type_id TEXT,
    owner_type_id INTEGER,
    owner_id BIGINT,
    responsible_id BIGINT,
    direction INTEGER,
    completed BOOLEAN,
    subject TEXT,
    created TIMESTAMP,
    last_updated TIMESTAMP,
    start_time TIMESTAMP,
    end_time TIMESTAMP,
    PRIMARY KEY (portal, id)
);
CREATE TABLE sync_state (
    portal TEXT NOT NULL,
    entity TEXT NOT NULL,
    modified_watermark TIMESTAMP,
    id_watermark BIGINT,
    full_done BOOLEAN,
    updated_at TIMESTAMP,
    PRIMARY KEY (portal, entity)
);
CREATE TABLE sync_runs (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    kind TEXT,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    outcome TEXT,
    message TEXT,
    requests BIGINT,
    counts TEXT,
    PRIMARY KEY (portal, id)
);
CREATE TABLE scope_overrides (
    portal TEXT NOT NULL,
    viewer_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    allow BOOLEAN NOT NULL,
    PRIMARY KEY (portal, viewer_id, user_id)
);
""",
    ),
    (
        2,
        "report admins",
        """
CREATE TABLE report_admins (
    portal TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (portal, user_id)
);
""",
    ),
    (
        3,
        "call recordings and client phones",
        """
ALTER TABLE calls ADD COLUMN call_record_url TEXT;
ALTER TABLE calls ADD COLUMN record_file_id BIGINT;
ALTER TABLE companies ADD COLUMN phone TEXT;
ALTER TABLE contacts ADD COLUMN phone TEXT;
""",
    ),
    (
        4,
        "viewer grants",
        # What Bitrix24 lets each viewer read (app mode; rop.store.grants):
        # per entity, whole or not; users seen in full; further record IDs.
        """
CREATE TABLE viewer_grants (
    portal TEXT NOT NULL,
    viewer_id BIGINT NOT NULL,
    entity TEXT NOT NULL,
    whole BOOLEAN NOT NULL,
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (portal, viewer_id, entity)
);
CREATE TABLE viewer_grant_users (
    portal TEXT NOT NULL,
    viewer_id BIGINT NOT NULL,
    entity TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (portal, viewer_id, entity, user_id)
);
CREATE TABLE viewer_grant_records (
    portal TEXT NOT NULL,
    viewer_id BIGINT NOT NULL,
    entity TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (portal, viewer_id, entity, record_id)
);
""",
    ),
    (
        5,
        "installed applications",
        # One row per Bitrix24 portal that installed the app, keyed by
        # member_id (stable across domain changes); `portal` is the key the
        # CRM tables use. Secrets are Fernet tokens (rop/store/vault.py):
        # the file alone does not reveal them.
        """
CREATE TABLE app_portals (
    member_id TEXT PRIMARY KEY,
    portal TEXT NOT NULL,
    domain TEXT NOT NULL,
    client_endpoint TEXT NOT NULL,
    server_endpoint TEXT NOT NULL,
    application_token TEXT,
    access_token TEXT,
    refresh_token TEXT,
    expires_at TIMESTAMP,
    installer_id BIGINT,
    state TEXT NOT NULL,
    problem TEXT,
    installed_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE TABLE app_events_seen (
    member_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    ts BIGINT,
    seen_at TIMESTAMP,
    PRIMARY KEY (member_id, digest)
);
""",
    ),
    (6, "nothing is NULL", _nothing_is_null()),
    (
        7,
        "the portal's clock",
        # The portal's own time at the last copy (UTC): the report's "today"
        # comes from it, never from the machine's clock (docs/SYNC.md). Before
        # this, the best estimate is when the copy was made.
        """
ALTER TABLE portals ADD COLUMN clock TIMESTAMP;
UPDATE portals SET clock = updated_at;
""",
    ),
    (
        8,
        "plans",
        """
CREATE TABLE plans (
    portal TEXT NOT NULL,
    subject TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    figure TEXT NOT NULL,
    period_kind TEXT NOT NULL,
    period_start DATE NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    changed_by BIGINT,
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (portal, subject, subject_id, figure, period_kind, period_start)
);
CREATE TABLE plan_changes (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    subject TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    figure TEXT NOT NULL,
    period_kind TEXT NOT NULL,
    period_start DATE NOT NULL,
    old_value DOUBLE PRECISION,
    new_value DOUBLE PRECISION,
    changed_by BIGINT,
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (portal, id)
);
""",
    ),
    (
        9,
        "digests",
        # Scheduled digests (rop/digests, docs/DIGESTS.md): who gets which
        # report when and how; one row per (subscription, slot, channel) in
        # digest_sends, whose key is what makes a slot go out once even across
        # restarts and several workers; digest_log is the delivery log. The
        # reader's own time zone (user.get TIME_ZONE) schedules the slot.
        """
ALTER TABLE users ADD COLUMN time_zone TEXT;
CREATE TABLE digest_subscriptions (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    frequency TEXT NOT NULL,
    weekday INTEGER,
    month_day INTEGER,
    at_time TEXT NOT NULL,
    workdays_only BOOLEAN NOT NULL,
    period TEXT NOT NULL,
    filter TEXT NOT NULL,
    channels TEXT NOT NULL,
    xlsx BOOLEAN NOT NULL,
    language TEXT NOT NULL,
    created_by BIGINT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (portal, id)
);
CREATE TABLE digest_sends (
    portal TEXT NOT NULL,
    subscription_id BIGINT NOT NULL,
    slot TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP,
    claimed_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    reason TEXT,
    PRIMARY KEY (portal, subscription_id, slot, channel)
);
CREATE TABLE digest_log (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    logged_at TIMESTAMP NOT NULL,
    subscription_id BIGINT,
    user_id BIGINT,
    slot TEXT,
    channel TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (portal, id)
);
""",
    ),
    (
        10,
        "sync workers",
        # Server mode (docs/SERVER.md "Workers"): the webhook portals the
        # workers sync (the URL sealed by the vault, as app tokens are), and
        # the records events named that a worker has not re-read yet. A
        # pending row is removed only after the sync that read it committed,
        # and only if no newer event touched it meanwhile (received_at).
        """
CREATE TABLE sync_sources (
    portal TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    added_at TIMESTAMP NOT NULL
);
CREATE TABLE sync_pending (
    portal TEXT NOT NULL,
    entity TEXT NOT NULL,
    record TEXT NOT NULL,
    deleted BOOLEAN NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (portal, entity, record)
);
""",
    ),
    (
        11,
        "every activity, client e-mails and contact keys",
        # Activities of every type with their deadline, status and author
        # (before, calls only); clients' first e-mail and the normalised phone
        # and e-mail the duplicate check compares (rop.bitrix.contact_keys).
        # Rows copied before have none of it, so their entities are copied in
        # full once more by the next sync (docs/SYNC.md).
        """
ALTER TABLE activities ADD COLUMN author_id BIGINT;
ALTER TABLE activities ADD COLUMN status INTEGER;
ALTER TABLE activities ADD COLUMN deadline TIMESTAMP;
ALTER TABLE companies ADD COLUMN email TEXT;
ALTER TABLE companies ADD COLUMN phone_norm TEXT;
ALTER TABLE companies ADD COLUMN email_norm TEXT;
ALTER TABLE contacts ADD COLUMN email TEXT;
ALTER TABLE contacts ADD COLUMN phone_norm TEXT;
ALTER TABLE contacts ADD COLUMN email_norm TEXT;
DELETE FROM sync_state WHERE entity IN ('activities', 'companies', 'contacts');
""",
    ),
    (
        12,
        "stored facts",
        # Per-record facts the report reads (rop/store/facts.py), refreshed by
        # every writer for the records it marked in fact_changes. Filled by
        # the store's next `rop migrate` or sync (rop.store.facts.ensure_facts).
        """
CREATE TABLE deal_facts (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    manager_id BIGINT,
    category_id BIGINT,
    semantic TEXT,
    date_create TIMESTAMP,
    closedate DATE,
    company_id BIGINT,
    contact_id BIGINT,
    close_time TIMESTAMP,
    amount DOUBLE PRECISION,
    amount_missing BOOLEAN,
    grp_source TEXT,
    grp_pipeline TEXT,
    first_move TIMESTAMP,
    last_move TIMESTAMP,
    moves TIMESTAMP[],
    PRIMARY KEY (portal, id)
);
CREATE TABLE lead_facts (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    manager_id BIGINT,
    semantic TEXT,
    date_create TIMESTAMP,
    close_time TIMESTAMP,
    grp_source TEXT,
    grp_pipeline TEXT,
    first_move TIMESTAMP,
    last_move TIMESTAMP,
    moves TIMESTAMP[],
    PRIMARY KEY (portal, id)
);
CREATE TABLE call_facts (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    manager_id BIGINT,
    call_type INTEGER,
    call_duration INTEGER,
    call_start_date TIMESTAMP,
    call_failed_code TEXT,
    crm_entity_type TEXT,
    crm_entity_id BIGINT,
    company_id BIGINT,
    contact_id BIGINT,
    PRIMARY KEY (portal, id)
);
CREATE TABLE fact_changes (
    portal TEXT NOT NULL,
    entity TEXT NOT NULL,
    id BIGINT NOT NULL,
    PRIMARY KEY (portal, entity, id)
);
CREATE TABLE facts_state (
    portal TEXT NOT NULL,
    version INTEGER NOT NULL,
    inputs TEXT,
    stamp TIMESTAMP,
    refreshed_at TIMESTAMP,
    PRIMARY KEY (portal)
);
""",
    ),
    (
        13,
        "calls: the normalised phone",
        # The caller's number as a key (rop.bitrix.contact_keys.phone_key), so a
        # missed call and the call back match however the number was spelt
        # (the figure calls_not_called_back, docs/METRICS_DECISIONS.md). Rows
        # copied before have none: the next sync copies the calls in full again.
        """
ALTER TABLE calls ADD COLUMN phone_norm TEXT;
DELETE FROM sync_state WHERE entity = 'calls';
""",
    ),
    (
        14,
        "requisites",
        # Companies' and contacts' requisites (crm.requisite.list): the INN the
        # duplicate check compares, its digits kept when valid (inn_norm,
        # rop.bitrix.contact_keys.inn_key). Filled by the next sync.
        """
CREATE TABLE requisites (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    entity_type_id INTEGER,
    entity_id BIGINT,
    preset_id BIGINT,
    rq_inn TEXT,
    inn_norm TEXT,
    date_create TIMESTAMP,
    date_modify TIMESTAMP,
    PRIMARY KEY (portal, id)
);
""",
    ),
    (
        15,
        "stored stage facts",
        # Stage visits, open visits, furthest stages and open aggregates per
        # deal and lead (rop/store/stage_facts.py), refreshed with the facts of
        # migration 12; filled by the store's next `rop migrate` or sync
        # (FACTS_VERSION 2).
        "\n" + _stage_tables("deal") + _stage_tables("lead"),
    ),
    (
        16,
        "stored client facts, the funnel's furthest stage",
        # Per company and contact: when its deals were created and won and when
        # it was called, first, last and all (rop/store/client_facts.py); per deal
        # the furthest working stage of its pipeline it reached (the page's
        # funnel). Refreshed with the facts of migration 12; filled when the store
        # is next migrated or synced (FACTS_VERSION 3).
        """
ALTER TABLE deal_facts ADD COLUMN funnel_top INTEGER;
CREATE TABLE client_facts (
    portal TEXT NOT NULL,
    kind TEXT NOT NULL,
    id BIGINT NOT NULL,
    created_first TIMESTAMP,
    created_last TIMESTAMP,
    created TIMESTAMP[],
    won_first TIMESTAMP,
    won_last TIMESTAMP,
    won TIMESTAMP[],
    called_first TIMESTAMP,
    called_last TIMESTAMP,
    called TIMESTAMP[],
    PRIMARY KEY (portal, kind, id)
);
""",
    ),
    (
        17,
        "fact rollups",
        # Counts and sums of the stored facts per manager and local day
        # (rop/store/rollups.py): the report's deal, lead and call figures that
        # are sums read these instead of every record. Refreshed with the facts;
        # built by the store's next `rop migrate` or sync (rollup_state: the
        # version built with which facts_state). PostgreSQL's indexes on them:
        # rop.store.postgres.PG_INDEXES.
        """
CREATE TABLE record_rollups (
    portal TEXT NOT NULL,
    entity TEXT NOT NULL,
    kind TEXT NOT NULL,
    day DATE,
    manager_id BIGINT,
    category_id BIGINT,
    semantic TEXT,
    n BIGINT NOT NULL,
    amount DOUBLE PRECISION,
    days_s DOUBLE PRECISION,
    days_n BIGINT
);
CREATE TABLE call_rollups (
    portal TEXT NOT NULL,
    day DATE,
    manager_id BIGINT,
    call_type INTEGER,
    ok BOOLEAN,
    n BIGINT NOT NULL,
    secs BIGINT
);
CREATE TABLE rollup_state (
    portal TEXT NOT NULL,
    version INTEGER NOT NULL,
    refreshed_at TIMESTAMP,
    PRIMARY KEY (portal)
);
""",
    ),
    (
        18,
        "stored client texts",
        # Per company and contact: its last call, the number called and its last
        # sale, what a list of clients shows (rop/store/client_texts.py), so a
        # page of such a list reads its own rows. Refreshed with the client facts;
        # filled by the store's next `rop migrate` or sync (FACTS_VERSION 4).
        """
CREATE TABLE client_texts (
    portal TEXT NOT NULL,
    kind TEXT NOT NULL,
    id BIGINT NOT NULL,
    last_call TIMESTAMP,
    phone TEXT,
    last_won TIMESTAMP,
    won_deal BIGINT,
    PRIMARY KEY (portal, kind, id)
);
""",
    ),
    (
        19,
        "client days",
        # Per company and contact, each local day with a deal created or won (per
        # pipeline) or a call (rop/store/client_days.py): the client sections'
        # flags of a period from a range of days.
        # Built with the rollups (ROLLUP_VERSION 2) by `rop migrate` or the next
        # `rop sync` (rop.store.facts.ensure_facts); PostgreSQL's index:
        # rop.store.postgres.PG_INDEXES.
        """
CREATE TABLE client_days (
    portal TEXT NOT NULL,
    kind TEXT NOT NULL,
    day DATE NOT NULL,
    id BIGINT NOT NULL,
    category_id BIGINT,
    created BOOLEAN NOT NULL,
    won BOOLEAN NOT NULL,
    call_max INTEGER
);
""",
    ),
    (
        20,
        "stored client managers",
        # The client days hold their client's manager (rop/store/client_days.py),
        # and the clients are counted per manager and local creation day
        # (rop/store/manager_clients.py): the client sections then read no client
        # row. Both are rebuilt with the rollups (ROLLUP_VERSION 3) by `rop migrate`
        # or the next `rop sync`, so the client days' old rows can go here.
        """
DROP TABLE client_days;
CREATE TABLE client_days (
    portal TEXT NOT NULL,
    kind TEXT NOT NULL,
    day DATE NOT NULL,
    id BIGINT NOT NULL,
    category_id BIGINT,
    created BOOLEAN NOT NULL,
    won BOOLEAN NOT NULL,
    call_max INTEGER,
    manager_id BIGINT
);
CREATE TABLE manager_clients (
    portal TEXT NOT NULL,
    kind TEXT NOT NULL,
    manager_id BIGINT NOT NULL,
    day DATE,
    n BIGINT NOT NULL
);
""",
    ),
    (
        21,
        "client firsts",
        # Per company and contact, each local day with a deal created or won or a
        # call, and the previous day it had each (rop/store/client_firsts.py): the
        # client sections count a period's distinct clients per manager as a range
        # of days, with no grouping per client. Built with the rollups
        # (ROLLUP_VERSION 4) by `rop migrate` or the next `rop sync`; PostgreSQL's
        # indexes: rop.store.postgres.PG_INDEXES.
        """
CREATE TABLE client_firsts (
    portal TEXT NOT NULL,
    kind TEXT NOT NULL,
    day DATE NOT NULL,
    id BIGINT NOT NULL,
    manager_id BIGINT,
    created BOOLEAN NOT NULL,
    won BOOLEAN NOT NULL,
    called BOOLEAN NOT NULL,
    created_prev DATE,
    won_prev DATE,
    called_prev DATE
);
""",
    ),
    (
        22,
        "stage entries",
        # Per deal, pipeline and working stage, the latest moment the deal entered
        # it, with the deal's latest history row beside it (rop/store/stage_entries.py):
        # the forecast's stage probabilities as one scan and grouping. Built with the
        # rollups (ROLLUP_VERSION 5) by `rop migrate` or the next `rop sync`;
        # PostgreSQL's indexes: rop.store.postgres.PG_INDEXES.
        """
CREATE TABLE deal_stage_entries (
    portal TEXT NOT NULL,
    id BIGINT NOT NULL,
    category_id BIGINT NOT NULL,
    stage_id TEXT,
    entered TIMESTAMP NOT NULL,
    last_at TIMESTAMP NOT NULL,
    last_semantic TEXT NOT NULL
);
""",
    ),
]
