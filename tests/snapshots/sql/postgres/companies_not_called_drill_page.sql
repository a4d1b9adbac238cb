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
    ELSE b.id IN (SELECT u.id FROM deal_base u
        WHERE u.first_move < %(p_from)s AND u.last_move >= %(p_to)s AND EXISTS (SELECT 1 FROM unnest(u.moves) AS t(v) WHERE t.v >= %(p_from)s AND t.v < %(p_to)s))
END, FALSE) AS moved, TRUE AS in_pipes FROM deal_base b
),
company_deals AS (
SELECT company_id AS cid, bool_or((date_create >= %(p_from)s AND date_create < %(p_to)s)) AS with_deals, bool_or(semantic = 'S' AND (close_time >= %(p_from)s AND close_time < %(p_to)s)) AS with_sales FROM deal_base b WHERE TRUE AND company_id IS NOT NULL AND ((date_create >= %(p_from)s AND date_create < %(p_to)s) OR (semantic = 'S' AND (close_time >= %(p_from)s AND close_time < %(p_to)s))) GROUP BY company_id
),
call_base AS (
SELECT c.id, c.portal_user_id AS manager_id, c.call_type, c.call_duration,
    c.call_start_date, c.call_failed_code, c.crm_entity_type, c.crm_entity_id,
    CASE c.crm_entity_type WHEN 'COMPANY' THEN c.crm_entity_id
        WHEN 'CONTACT' THEN ct.company_id END AS company_id,
    CASE c.crm_entity_type WHEN 'CONTACT' THEN c.crm_entity_id END AS contact_id
FROM calls c
LEFT JOIN (SELECT id, company_id FROM contacts WHERE portal = %(portal)s) ct
    ON ct.id = c.crm_entity_id AND c.crm_entity_type = 'CONTACT'
WHERE c.portal = %(portal)s
),
company_calls AS (
SELECT DISTINCT company_id AS cid FROM call_base c WHERE company_id IS NOT NULL AND (c.call_start_date >= %(p_from)s AND c.call_start_date < %(p_to)s) AND c.call_duration >= %(min_s)s
),
company_rel AS (
SELECT x.id, x.assigned_by_id AS manager_id, x.title AS title, x.date_create,
    coalesce(cd.with_deals, FALSE) AS with_deals, coalesce(cd.with_sales, FALSE) AS with_sales,
    cc.cid IS NOT NULL AS called,
    CAST(NULL AS VARCHAR) AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline
FROM companies x
LEFT JOIN company_deals cd ON cd.cid = x.id
LEFT JOIN company_calls cc ON cc.cid = x.id
WHERE x.portal = %(portal)s AND x.assigned_by_id IS NOT NULL AND NOT coalesce(x.is_my_company, FALSE)
),
f_all AS (
SELECT r.*, u.department_id AS department_id FROM company_rel r LEFT JOIN users u ON u.portal = %(portal)s AND u.id = r.manager_id WHERE TRUE
),
f_page AS (
SELECT f.*, count(*) OVER () AS _total, count(*) OVER () AS a0_n FROM f_all f WHERE (NOT called) AND f.manager_id = %(row)s ORDER BY f.id ASC NULLS LAST, f.id LIMIT 100
),
company_text AS (
SELECT x.id, coalesce(x.phone, lp.phone) AS phone, lc.last_call, lw.last_won
FROM companies x
LEFT JOIN (SELECT cid, max(v) AS last_call FROM (
    SELECT c.crm_entity_id AS cid, c.call_start_date AS v FROM calls c
        WHERE c.portal = %(portal)s AND c.crm_entity_type = 'COMPANY' AND c.crm_entity_id IN (SELECT id FROM f_page)
    UNION ALL SELECT ct.company_id, c.call_start_date FROM calls c
        JOIN (SELECT id, company_id FROM contacts WHERE portal = %(portal)s AND company_id IN (SELECT id FROM f_page)) ct
            ON ct.id = c.crm_entity_id
        WHERE c.portal = %(portal)s AND c.crm_entity_type = 'CONTACT') c GROUP BY cid) lc ON lc.cid = x.id
LEFT JOIN (SELECT cid, max(v) AS phone FROM (
    SELECT c.crm_entity_id AS cid, c.phone_number AS v FROM calls c
        WHERE c.portal = %(portal)s AND c.crm_entity_type = 'COMPANY' AND c.crm_entity_id IN (SELECT id FROM companies WHERE portal = %(portal)s AND phone IS NULL AND id IN (SELECT id FROM f_page))
    UNION ALL SELECT ct.company_id, c.phone_number FROM calls c
        JOIN (SELECT id, company_id FROM contacts WHERE portal = %(portal)s AND company_id IN (SELECT id FROM companies WHERE portal = %(portal)s AND phone IS NULL AND id IN (SELECT id FROM f_page))) ct
            ON ct.id = c.crm_entity_id
        WHERE c.portal = %(portal)s AND c.crm_entity_type = 'CONTACT') c GROUP BY cid) lp ON lp.cid = x.id
LEFT JOIN (SELECT d.company_id AS cid, max(coalesce(h.t, d.moved_time)) AS last_won
    FROM deals d
    LEFT JOIN (SELECT owner_id, max(created_time) AS t FROM deal_stage_history
        WHERE portal = %(portal)s AND type_id = 3 AND owner_id IN (SELECT d.id FROM deals d WHERE d.portal = %(portal)s AND d.stage_semantic = 'S' AND d.company_id IS NOT NULL AND d.company_id IN (SELECT id FROM f_page)) GROUP BY owner_id) h ON h.owner_id = d.id
    WHERE d.portal = %(portal)s AND d.stage_semantic = 'S' AND d.company_id IS NOT NULL AND d.company_id IN (SELECT id FROM f_page)
    GROUP BY 1) lw ON lw.cid = x.id
WHERE x.portal = %(portal)s AND x.id IN (SELECT id FROM f_page)
),
f AS (
SELECT r.*, coalesce(nullif(trim(coalesce(u.name, '') || ' ' || coalesce(u.last_name, '')), ''), 'user #' || CAST(r.manager_id AS VARCHAR)) AS manager_name, t.phone, t.last_call, t.last_won FROM f_page r LEFT JOIN users u ON u.portal = %(portal)s AND u.id = r.manager_id LEFT JOIN company_text t ON t.id = r.id
)
SELECT f.id AS id, f.manager_id AS manager_id, title AS title, manager_name AS manager, date_create AS date_create, with_deals AS with_deals, with_sales AS with_sales, called AS called, last_call AS last_call, last_won AS last_won, phone AS phone, f._total, f.a0_n FROM f ORDER BY f.id ASC NULLS LAST, f.id
