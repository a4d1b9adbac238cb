WITH call_base AS (
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
call_rel AS (
SELECT c.*, CAST(NULL AS VARCHAR) AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline
FROM call_base c
WHERE c.manager_id IS NOT NULL
    AND (c.call_start_date >= %(p_from)s AND c.call_start_date < %(p_to)s) AND c.call_duration >= %(min_s)s
),
f_all AS (
SELECT r.*, u.department_id AS department_id FROM call_rel r LEFT JOIN users u ON u.portal = %(portal)s AND u.id = r.manager_id WHERE TRUE
),
f_page AS (
SELECT f.*, count(*) OVER () AS _total, count(*) OVER () AS a0_n FROM f_all f WHERE (TRUE) AND f.manager_id = %(row)s ORDER BY f.id ASC NULLS LAST, f.id LIMIT 100
),
call_text AS (
SELECT c.id, c.phone_number,
    CASE c.crm_entity_type
        WHEN 'COMPANY' THEN co.title
        WHEN 'CONTACT' THEN nullif(trim(coalesce(ct.name, '') || ' ' || coalesce(ct.last_name, '')), '')
        WHEN 'LEAD' THEN coalesce(l.title,
            nullif(trim(coalesce(l.name, '') || ' ' || coalesce(l.last_name, '')), ''))
    END AS client_name,
    coalesce(nullif(c.call_record_url, ''),
        'file:' || CAST(c.record_file_id AS VARCHAR)) AS record
FROM (SELECT * FROM calls WHERE portal = %(portal)s AND id IN (SELECT id FROM f_page)) c
LEFT JOIN (SELECT id, title FROM companies WHERE portal = %(portal)s AND id IN (SELECT crm_entity_id FROM calls WHERE portal = %(portal)s AND id IN (SELECT id FROM f_page))) co
    ON co.id = c.crm_entity_id AND c.crm_entity_type = 'COMPANY'
LEFT JOIN (SELECT id, name, last_name FROM contacts WHERE portal = %(portal)s AND id IN (SELECT crm_entity_id FROM calls WHERE portal = %(portal)s AND id IN (SELECT id FROM f_page))) ct
    ON ct.id = c.crm_entity_id AND c.crm_entity_type = 'CONTACT'
LEFT JOIN (SELECT id, title, name, last_name FROM leads WHERE portal = %(portal)s AND id IN (SELECT crm_entity_id FROM calls WHERE portal = %(portal)s AND id IN (SELECT id FROM f_page))) l
    ON l.id = c.crm_entity_id AND c.crm_entity_type = 'LEAD'
WHERE c.portal = %(portal)s
),
f AS (
SELECT r.*, coalesce(nullif(trim(coalesce(u.name, '') || ' ' || coalesce(u.last_name, '')), ''), 'user #' || CAST(r.manager_id AS VARCHAR)) AS manager_name, t.phone_number, t.client_name, t.record FROM f_page r LEFT JOIN users u ON u.portal = %(portal)s AND u.id = r.manager_id LEFT JOIN call_text t ON t.id = r.id
)
SELECT f.id AS id, f.manager_id AS manager_id, manager_name AS manager, call_start_date AS started, call_type AS call_type, call_duration AS duration, call_failed_code AS failed_code, phone_number AS phone, client_name AS client, crm_entity_type AS crm_entity_type, crm_entity_id AS crm_entity_id, record AS record, f._total, f.a0_n FROM f ORDER BY f.id ASC NULLS LAST, f.id
