SELECT k, dept, a0_n, NULL AS a1_n, NULL AS a2_s, NULL AS a3_n, NULL AS a4_s, NULL AS a5_n, NULL AS a6_s, NULL AS a7_s, NULL AS a7_n, NULL AS a8_n, NULL AS a9_s, NULL AS a10_num, NULL AS a10_den, NULL AS a11_num, NULL AS a11_den, NULL AS a12_num, NULL AS a12_den, NULL AS a13_s, NULL AS a13_n, NULL AS a14_s, NULL AS a14_n, NULL AS a15_n, NULL AS a16_s, NULL AS a17_n FROM (
WITH deal_stage_dir AS (
SELECT status_id, max(semantics) AS semantics, max(name) AS name FROM statuses WHERE portal = %(portal)s AND entity_id LIKE 'DEAL_STAGE%%' GROUP BY status_id
),
deal_base AS (
SELECT d.id, d.assigned_by_id AS manager_id, d.category_id, coalesce(d.stage_semantic, s.semantics, 'P') AS semantic,
    d.date_create, d.closedate, d.company_id, d.contact_id,
    CASE WHEN coalesce(d.stage_semantic, s.semantics, 'P') IN ('S', 'F') THEN coalesce(c.closed_at, d.moved_time, CAST(timezone(%(tz)s, CAST(d.closedate AS TIMESTAMP)) AS TIMESTAMP)) END
        AS close_time,
    coalesce(d.opportunity * coalesce(r.rate, CASE WHEN d.currency_id IS NULL THEN 1.0 END), 0)
        AS amount,
    (coalesce(d.opportunity, 0) = 0 OR (r.rate IS NULL AND d.currency_id IS NOT NULL))
        AS amount_missing,
    coalesce(d.source_id, l.source_id) AS grp_source,
    CAST(d.category_id AS VARCHAR) AS grp_pipeline, c.first_move, c.last_move, c.moves,
    ft.funnel_top
FROM deals d
LEFT JOIN (SELECT owner_id, max(created_time) FILTER (WHERE type_id = 3) AS closed_at, min(created_time) AS first_move, max(created_time) AS last_move, array_agg(created_time ORDER BY created_time) AS moves FROM deal_stage_history WHERE portal = %(portal)s AND type_id IN (2, 3, 5) GROUP BY owner_id) c ON c.owner_id = d.id
LEFT JOIN (SELECT r.id, max(st.sort) AS funnel_top FROM (
    SELECT owner_id AS id, stage_id FROM deal_stage_history
    WHERE portal = %(portal)s
    UNION ALL SELECT id, stage_id FROM deals WHERE portal = %(portal)s) r
JOIN (SELECT id, CASE WHEN category_id = 0 THEN 'DEAL_STAGE'
        ELSE 'DEAL_STAGE_' || CAST(category_id AS VARCHAR) END AS entity
    FROM deals WHERE portal = %(portal)s) dc ON dc.id = r.id
JOIN (SELECT entity_id, status_id, max(sort) AS sort FROM statuses
    WHERE portal = %(portal)s AND entity_id LIKE 'DEAL_STAGE%%' AND coalesce(semantics, '') <> 'F'
    GROUP BY entity_id, status_id) st ON st.entity_id = dc.entity AND st.status_id = r.stage_id
GROUP BY r.id) ft ON ft.id = d.id
-- Joins on the ID alone, the portal fixed inside: a join key with the
-- portal's name in it costs a string comparison per row (0.3 s at 1M deals).
LEFT JOIN (SELECT id, source_id FROM leads WHERE portal = %(portal)s) l ON l.id = d.lead_id
LEFT JOIN (SELECT currency, CASE WHEN currency = %(base)s OR base THEN 1.0
        ELSE amount / amount_cnt END AS rate
    FROM currencies WHERE portal = %(portal)s) r ON r.currency = d.currency_id
LEFT JOIN (SELECT status_id, max(semantics) AS semantics FROM statuses
    WHERE portal = %(portal)s AND entity_id LIKE 'DEAL_STAGE%%' GROUP BY status_id) s
    ON s.status_id = d.stage_id
WHERE d.portal = %(portal)s AND d.assigned_by_id IS NOT NULL
),
deal_rel AS (
SELECT b.*, coalesce(CASE
    WHEN b.last_move < %(p_from)s OR b.first_move >= %(p_to)s THEN FALSE
    WHEN b.first_move >= %(p_from)s OR b.last_move < %(p_to)s THEN TRUE
    ELSE EXISTS (SELECT 1 FROM unnest(b.moves) AS t(v) WHERE t.v >= %(p_from)s AND t.v < %(p_to)s)
END, FALSE) AS moved, b.category_id IN (SELECT unnest(CAST(%(pipes)s AS BIGINT[]))) AS in_pipes FROM deal_base b
),
f AS (
SELECT r.*, u.department_id AS department_id FROM deal_rel r LEFT JOIN users u ON u.portal = %(portal)s AND u.id = r.manager_id WHERE r.in_pipes AND r.manager_id IN (SELECT unnest(CAST(%(allowed)s AS BIGINT[])))
)
SELECT k, dept, a0_n FROM (
SELECT f.manager_id AS k, f.department_id AS dept,
    count(*) FILTER (WHERE moved) AS a0_n
FROM f WHERE ((moved)) AND ((last_move >= %(p_from)s AND first_move < %(p_to)s)) GROUP BY f.manager_id, f.department_id) g
) x
UNION ALL SELECT k, dept, NULL AS a0_n, a1_n, a2_s, a3_n, a4_s, a5_n, a6_s, a7_s, a7_n, a8_n, a9_s, a10_num, a10_den, a11_num, a11_den, a12_num, a12_den, a13_s, a13_n, a14_s, a14_n, a15_n, a16_s, a17_n FROM (
WITH f AS (
SELECT r.*, u.department_id AS department_id FROM record_rollups r LEFT JOIN users u ON u.portal = %(portal)s AND u.id = r.manager_id
WHERE r.portal = %(portal)s AND r.entity = 'deal' AND r.category_id IN (SELECT unnest(CAST(%(pipes)s AS BIGINT[]))) AND r.manager_id IN (SELECT unnest(CAST(%(allowed)s AS BIGINT[])))
)
SELECT k, dept, a1_n, a2_s, a3_n, a4_s, a5_n, a6_s, a6_s AS a7_s, a5_n AS a7_n, a8_n, a9_s, a10_num, a1_n AS a10_den, a11_num, a1_n AS a11_den, a12_num, a12_den, a13_s, a13_n, a14_s, a14_n, a15_n, a16_s, a17_n FROM (
SELECT f.manager_id AS k, f.department_id AS dept,
    sum(n) FILTER (WHERE kind = 'new' AND day >= %(d_from)s AND day <= %(d_to)s) AS a1_n,
    sum(amount) FILTER (WHERE kind = 'new' AND day >= %(d_from)s AND day <= %(d_to)s) AS a2_s,
    sum(n) FILTER (WHERE kind = 'open') AS a3_n,
    sum(amount) FILTER (WHERE kind = 'open') AS a4_s,
    sum(n) FILTER (WHERE kind = 'closed' AND semantic = 'S' AND day >= %(d_from)s AND day <= %(d_to)s) AS a5_n,
    sum(amount) FILTER (WHERE kind = 'closed' AND semantic = 'S' AND day >= %(d_from)s AND day <= %(d_to)s) AS a6_s,
    sum(n) FILTER (WHERE kind = 'closed' AND semantic = 'F' AND day >= %(d_from)s AND day <= %(d_to)s) AS a8_n,
    sum(amount) FILTER (WHERE kind = 'closed' AND semantic = 'F' AND day >= %(d_from)s AND day <= %(d_to)s) AS a9_s,
    sum(n) FILTER (WHERE (kind = 'new' AND day >= %(d_from)s AND day <= %(d_to)s) AND (semantic = 'S')) AS a10_num,
    sum(n) FILTER (WHERE (kind = 'new' AND day >= %(d_from)s AND day <= %(d_to)s) AND (semantic = 'F')) AS a11_num,
    sum(n) FILTER (WHERE (kind = 'closed' AND day >= %(d_from)s AND day <= %(d_to)s) AND (semantic = 'S')) AS a12_num,
    sum(n) FILTER (WHERE kind = 'closed' AND day >= %(d_from)s AND day <= %(d_to)s) AS a12_den,
    sum(days_s) FILTER (WHERE kind = 'closed' AND semantic = 'S' AND day >= %(d_from)s AND day <= %(d_to)s) AS a13_s,
    sum(days_n) FILTER (WHERE kind = 'closed' AND semantic = 'S' AND day >= %(d_from)s AND day <= %(d_to)s) AS a13_n,
    sum(days_s) FILTER (WHERE kind = 'closed' AND semantic = 'F' AND day >= %(d_from)s AND day <= %(d_to)s) AS a14_s,
    sum(days_n) FILTER (WHERE kind = 'closed' AND semantic = 'F' AND day >= %(d_from)s AND day <= %(d_to)s) AS a14_n,
    sum(n) FILTER (WHERE kind = 'open' AND day >= %(d_from)s AND day <= %(d_to)s) AS a15_n,
    sum(amount) FILTER (WHERE kind = 'open' AND day >= %(d_from)s AND day <= %(d_to)s) AS a16_s,
    sum(n) FILTER (WHERE kind = 'open' AND day < %(today)s) AS a17_n
FROM f WHERE (kind = 'closed' AND day >= %(d_from)s AND day <= %(d_to)s) OR (kind = 'closed' AND semantic = 'F' AND day >= %(d_from)s AND day <= %(d_to)s) OR (kind = 'closed' AND semantic = 'S' AND day >= %(d_from)s AND day <= %(d_to)s) OR (kind = 'new' AND day >= %(d_from)s AND day <= %(d_to)s) OR (kind = 'open') OR (kind = 'open' AND day < %(today)s) OR (kind = 'open' AND day >= %(d_from)s AND day <= %(d_to)s) GROUP BY f.manager_id, f.department_id) g
) y
