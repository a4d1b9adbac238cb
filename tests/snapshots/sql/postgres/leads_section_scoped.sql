WITH lead_status_dir AS (
SELECT status_id, max(semantics) AS semantics, max(name) AS name FROM statuses WHERE portal = %(portal)s AND entity_id = 'STATUS' GROUP BY status_id
),
lead_base AS (
SELECT l.id, l.assigned_by_id AS manager_id, coalesce(l.status_semantic, s.semantics, 'P') AS semantic, l.date_create,
    CASE WHEN coalesce(l.status_semantic, s.semantics, 'P') IN ('S', 'F') THEN coalesce(c.closed_at, l.moved_time, l.date_closed) END AS close_time,
    l.source_id AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline,
    c.first_move, c.last_move, c.moves
FROM leads l
LEFT JOIN (SELECT owner_id, max(created_time) FILTER (WHERE type_id = 3) AS closed_at, min(created_time) AS first_move, max(created_time) AS last_move, array_agg(created_time ORDER BY created_time) AS moves FROM lead_status_history WHERE portal = %(portal)s AND type_id IN (2, 3) GROUP BY owner_id) c ON c.owner_id = l.id
LEFT JOIN (SELECT status_id, max(semantics) AS semantics FROM statuses
    WHERE portal = %(portal)s AND entity_id = 'STATUS' GROUP BY status_id) s
    ON s.status_id = l.status_id
WHERE l.portal = %(portal)s AND l.assigned_by_id IS NOT NULL
),
lead_rel AS (
SELECT b.*, coalesce(CASE
    WHEN b.last_move < %(p_from)s OR b.first_move >= %(p_to)s THEN FALSE
    WHEN b.first_move >= %(p_from)s OR b.last_move < %(p_to)s THEN TRUE
    ELSE b.id IN (SELECT u.id FROM lead_base u
        WHERE u.first_move < %(p_from)s AND u.last_move >= %(p_to)s AND EXISTS (SELECT 1 FROM unnest(u.moves) AS t(v) WHERE t.v >= %(p_from)s AND t.v < %(p_to)s))
END, FALSE) AS moved FROM lead_base b
),
f AS (
SELECT r.*, u.department_id AS department_id FROM lead_rel r LEFT JOIN users u ON u.portal = %(portal)s AND u.id = r.manager_id WHERE TRUE AND r.manager_id IN (SELECT unnest(CAST(%(allowed)s AS BIGINT[])))
)
SELECT k, dept, a0_n, a1_n, a2_n, a3_n, a4_n, a5_num, a0_n AS a5_den, a6_num, a0_n AS a6_den, a7_s, a7_n, a8_s, a8_n FROM (
SELECT f.manager_id AS k, f.department_id AS dept,
    count(*) FILTER (WHERE (date_create >= %(p_from)s AND date_create < %(p_to)s)) AS a0_n,
    count(*) FILTER (WHERE semantic = 'P') AS a1_n,
    count(*) FILTER (WHERE moved) AS a2_n,
    count(*) FILTER (WHERE semantic = 'S' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) AS a3_n,
    count(*) FILTER (WHERE semantic = 'F' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) AS a4_n,
    count(*) FILTER (WHERE ((date_create >= %(p_from)s AND date_create < %(p_to)s)) AND (semantic = 'S')) AS a5_num,
    count(*) FILTER (WHERE ((date_create >= %(p_from)s AND date_create < %(p_to)s)) AND (semantic = 'F')) AS a6_num,
    sum(((CAST(EXTRACT(EPOCH FROM close_time) AS DOUBLE PRECISION) - CAST(EXTRACT(EPOCH FROM date_create) AS DOUBLE PRECISION)) / 86400.0)) FILTER (WHERE semantic = 'S' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) AS a7_s,
    count(((CAST(EXTRACT(EPOCH FROM close_time) AS DOUBLE PRECISION) - CAST(EXTRACT(EPOCH FROM date_create) AS DOUBLE PRECISION)) / 86400.0)) FILTER (WHERE semantic = 'S' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) AS a7_n,
    sum(((CAST(EXTRACT(EPOCH FROM close_time) AS DOUBLE PRECISION) - CAST(EXTRACT(EPOCH FROM date_create) AS DOUBLE PRECISION)) / 86400.0)) FILTER (WHERE semantic = 'F' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) AS a8_s,
    count(((CAST(EXTRACT(EPOCH FROM close_time) AS DOUBLE PRECISION) - CAST(EXTRACT(EPOCH FROM date_create) AS DOUBLE PRECISION)) / 86400.0)) FILTER (WHERE semantic = 'F' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) AS a8_n
FROM f WHERE ((date_create >= %(p_from)s AND date_create < %(p_to)s)) OR (moved) OR (semantic = 'F' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) OR (semantic = 'P') OR (semantic = 'S' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) GROUP BY f.manager_id, f.department_id) g
