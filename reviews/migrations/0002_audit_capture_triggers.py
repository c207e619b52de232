"""On PostgreSQL, record every insert, update and delete of the curated dossier tables in the audit trail.

A trigger (not a signal) so that `.update()`, bulk writes, admin edits and raw SQL are all captured.
Rows written inside a reviews service are skipped: the service writes its own, richer audit row
(`reviews.in_service` is set for the duration of the service). Code that writes directly may name
the actor and reason with `SELECT set_config('reviews.actor_id', '<user id>', true)` (and
`'reviews.reason'`) inside its transaction. SQLite has no such triggers; services still audit there.
"""

from django.db import migrations

# (table, column holding the candidate id, column holding the dossier id, object type)
TRACKED = [
    ("dossiers_candidate", "id", "dossier_id", "dossiers.candidate"),
    ("dossiers_dossier", "", "id", "dossiers.dossier"),
    ("dossiers_guardrailcondition", "candidate_id", "", "dossiers.guardrailcondition"),
    ("dossiers_candidatetrial", "candidate_id", "", "dossiers.candidatetrial"),
    ("dossiers_candidatepublication", "candidate_id", "", "dossiers.candidatepublication"),
    ("dossiers_datagap", "", "dossier_id", "dossiers.datagap"),
    ("dossiers_druginteraction", "", "dossier_id", "dossiers.druginteraction"),
    ("dossiers_safetystatement", "", "dossier_id", "dossiers.safetystatement"),
]

FUNCTION = r"""
CREATE OR REPLACE FUNCTION reviews_audit_row_change() RETURNS trigger AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
    this_row jsonb;
    diff jsonb := '{}'::jsonb;
    field text;
BEGIN
    IF coalesce(current_setting('reviews.in_service', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    this_row := CASE WHEN TG_OP = 'DELETE' THEN old_row ELSE new_row END;
    FOR field IN SELECT jsonb_object_keys(old_row || new_row) LOOP
        -- bookkeeping columns change on every save and say nothing a reader needs
        CONTINUE WHEN field IN ('updated_at', 'created_at', 'version');
        IF (old_row -> field) IS DISTINCT FROM (new_row -> field) THEN
            diff := diff || jsonb_build_object(field, jsonb_build_array(old_row -> field, new_row -> field));
        END IF;
    END LOOP;
    IF diff = '{}'::jsonb THEN
        RETURN NULL;
    END IF;
    INSERT INTO reviews_auditevent
        (actor_id, at, candidate_id, dossier_id, object_type, object_id, action,
         from_state, to_state, reason, changes)
    VALUES (
        nullif(current_setting('reviews.actor_id', true), '')::bigint,
        clock_timestamp(),
        CASE WHEN TG_ARGV[0] = '' THEN NULL ELSE (this_row ->> TG_ARGV[0])::bigint END,
        CASE WHEN TG_ARGV[1] = '' THEN NULL ELSE (this_row ->> TG_ARGV[1])::bigint END,
        TG_ARGV[2],
        this_row ->> 'id',
        'row.' || lower(TG_OP),
        CASE WHEN diff ? 'status' THEN coalesce(old_row ->> 'status', '') ELSE '' END,
        CASE WHEN diff ? 'status' THEN coalesce(new_row ->> 'status', '') ELSE '' END,
        coalesce(current_setting('reviews.reason', true), ''),
        diff
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
    for table, candidate_col, dossier_col, object_type in TRACKED:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS reviews_audit ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER reviews_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION reviews_audit_row_change("
            f"'{candidate_col}', '{dossier_col}', '{object_type}')"
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, *_ in TRACKED:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS reviews_audit ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS reviews_audit_row_change()")


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0001_initial"),
        ("dossiers", "0001_initial"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
