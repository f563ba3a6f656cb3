-- with_contact_key(rows, keys): every row of `rows` (a relation with tenant_id,
-- contact_bsuid and contact_phone) with its contact_key, DOMAIN R2: the bsuid; else
-- the bsuid its phone is paired with in `keys` (int_contact_keys: tenant_id,
-- contact_phone, contact_bsuid); else the phone. The one definition of the key:
-- messages and int_contacts, the shards' cut of the staged messages (pipeline/stage.py)
-- and an incremental night's new contacts (pipeline/incremental.py) all call it.
create or replace temp macro with_contact_key(rows_relation, keys_relation) as table
select
    keyed_rows.*,
    coalesce(keyed_rows.contact_bsuid, contact_keys.contact_bsuid, keyed_rows.contact_phone) as contact_key
from query_table(rows_relation) as keyed_rows
left join query_table(keys_relation) as contact_keys
    on contact_keys.tenant_id = keyed_rows.tenant_id
    and contact_keys.contact_phone = keyed_rows.contact_phone
