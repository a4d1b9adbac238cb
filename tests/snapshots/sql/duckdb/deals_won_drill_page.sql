WITH deal_stage_dir AS (
SELECT status_id, max(semantics) AS semantics, max(name) AS name FROM statuses WHERE portal = $portal AND entity_id LIKE 'DEAL_STAGE%' GROUP BY status_id
),
deal_base AS (
SELECT d.id, d.assigned_by_id AS manager_id, d.category_id, coalesce(d.stage_semantic, s.semantics, 'P') AS semantic,
    d.date_create, d.closedate, d.company_id, d.contact_id,
    CASE WHEN coalesce(d.stage_semantic, s.semantics, 'P') IN ('S', 'F') THEN coalesce(c.closed_at, d.moved_time, CAST(timezone($tz, CAST(d.closedate AS TIMESTAMP)) AS TIMESTAMP)) END
        AS close_time,
    coalesce(d.opportunity * coalesce(r.rate, CASE WHEN d.currency_id IS NULL THEN 1.0 END), 0)
        AS amount,
    (coalesce(d.opportunity, 0) = 0 OR (r.rate IS NULL AND d.currency_id IS NOT NULL))
        AS amount_missing,
    coalesce(d.source_id, l.source_id) AS grp_source,
    CAST(d.category_id AS VARCHAR) AS grp_pipeline, c.first_move, c.last_move, c.moves,
    ft.funnel_top
FROM deals d
LEFT JOIN (SELECT owner_id, max(created_time) FILTER (WHERE type_id = 3) AS closed_at, min(created_time) AS first_move, max(created_time) AS last_move, list(created_time ORDER BY created_time) AS moves FROM deal_stage_history WHERE portal = $portal AND type_id IN (2, 3, 5) GROUP BY owner_id) c ON c.owner_id = d.id
LEFT JOIN (SELECT r.id, max(st.sort) AS funnel_top FROM (
    SELECT owner_id AS id, stage_id FROM deal_stage_history
    WHERE portal = $portal
    UNION ALL SELECT id, stage_id FROM deals WHERE portal = $portal) r
JOIN (SELECT id, CASE WHEN category_id = 0 THEN 'DEAL_STAGE'
        ELSE 'DEAL_STAGE_' || CAST(category_id AS VARCHAR) END AS entity
    FROM deals WHERE portal = $portal) dc ON dc.id = r.id
JOIN (SELECT entity_id, status_id, max(sort) AS sort FROM statuses
    WHERE portal = $portal AND entity_id LIKE 'DEAL_STAGE%' AND coalesce(semantics, '') <> 'F'
    GROUP BY entity_id, status_id) st ON st.entity_id = dc.entity AND st.status_id = r.stage_id
GROUP BY r.id) ft ON ft.id = d.id
-- Joins on the ID alone, the portal fixed inside: a join key with the
-- portal's name in it costs a string comparison per row (0.3 s at 1M deals).
LEFT JOIN (SELECT id, source_id FROM leads WHERE portal = $portal) l ON l.id = d.lead_id
LEFT JOIN (SELECT currency, CASE WHEN currency = $base OR base THEN 1.0
        ELSE amount / amount_cnt END AS rate
    FROM currencies WHERE portal = $portal) r ON r.currency = d.currency_id
LEFT JOIN (SELECT status_id, max(semantics) AS semantics FROM statuses
    WHERE portal = $portal AND entity_id LIKE 'DEAL_STAGE%' GROUP BY status_id) s
    ON s.status_id = d.stage_id
WHERE d.portal = $portal AND d.assigned_by_id IS NOT NULL
),
deal_rel AS NOT MATERIALIZED (
-- computed where read
SELECT b.*, coalesce(CASE
    WHEN b.last_move < $p_from OR b.first_move >= $p_to THEN FALSE
    WHEN b.first_move >= $p_from OR b.last_move < $p_to THEN TRUE
    ELSE b.id IN (SELECT u.id FROM deal_base u
        WHERE u.first_move < $p_from AND u.last_move >= $p_to AND len(list_filter(u.moves, lambda t: t >= $p_from AND t < $p_to)) > 0)
END, FALSE) AS moved, TRUE AS in_pipes FROM deal_base b
),
f_all AS NOT MATERIALIZED (
-- computed where read
SELECT r.* FROM deal_rel r WHERE r.in_pipes
),
f_page AS MATERIALIZED (
-- computed once
SELECT f.*, count(*) OVER () AS _total, count(*) OVER () AS a0_n FROM f_all f WHERE (semantic = 'S' AND (close_time >= $p_from AND close_time < $p_to)) AND f.manager_id = $row ORDER BY f.id ASC NULLS LAST, f.id LIMIT 100
),
deal_text AS (
SELECT d.id, d.title, coalesce(p.name, CAST(d.category_id AS VARCHAR)) AS pipeline_name,
    d.stage_id, coalesce(s.name, d.stage_id) AS stage_name, d.source_id,
    d.opportunity, coalesce(d.currency_id, $base) AS currency_id
FROM (SELECT * FROM deals WHERE portal = $portal AND id IN (SELECT id FROM f_page)) d
LEFT JOIN deal_stage_dir s ON s.status_id = d.stage_id
LEFT JOIN (SELECT id, name FROM pipelines WHERE portal = $portal) p ON p.id = d.category_id
WHERE d.portal = $portal
),
f AS (
SELECT r.*, coalesce(nullif(trim(coalesce(u.name, '') || ' ' || coalesce(u.last_name, '')), ''), 'user #' || CAST(r.manager_id AS VARCHAR)) AS manager_name, t.title, t.pipeline_name, t.stage_id, t.stage_name, t.source_id, t.opportunity, t.currency_id FROM f_page r LEFT JOIN users u ON u.portal = $portal AND u.id = r.manager_id LEFT JOIN deal_text t ON t.id = r.id
)
SELECT f.id AS id, f.manager_id AS manager_id, title AS title, manager_name AS manager, pipeline_name AS pipeline, stage_name AS stage, amount AS amount, amount_missing AS amount_missing, opportunity AS opportunity, currency_id AS currency, date_create AS date_create, close_time AS close_time, closedate AS closedate, f._total, f.a0_n FROM f ORDER BY f.id ASC NULLS LAST, f.id
