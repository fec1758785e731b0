# SPDX-License-Identifier: Apache-2.0
"""The usage log: every record gets a ``seq`` in commit order; consumers keep cursors in it.

Why ``seq`` is assigned under a transaction-scoped advisory lock: see
``potluck.usage.consumers``. The trigger does it for every insert, whoever the writer.
"""

from django.db import migrations, models

# Must equal potluck.usage.consumers.LOG_LOCK_ID ("usagelog" as a big-endian int64).
LOG_LOCK_ID = 0x75736167656C6F67

JOIN_LOG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION usage_record_join_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Held until this transaction ends: no other transaction takes a seq before this
    -- one has committed or rolled back, so records become visible in seq order.
    PERFORM pg_advisory_xact_lock({LOG_LOCK_ID});
    NEW.seq := nextval('usage_record_seq');
    NEW.recorded_at := clock_timestamp();
    RETURN NEW;
END
$$;
"""

FORWARD = f"""
CREATE SEQUENCE usage_record_seq AS bigint;
ALTER TABLE usage_usagerecord ADD COLUMN seq bigint, ADD COLUMN recorded_at timestamptz;
-- Records already there join the log in the order they were made.
WITH ordered AS (
    SELECT request_id, row_number() OVER (ORDER BY created_at, request_id) AS n
    FROM usage_usagerecord
)
UPDATE usage_usagerecord AS r SET seq = o.n, recorded_at = r.created_at
FROM ordered AS o WHERE r.request_id = o.request_id;
SELECT setval('usage_record_seq', coalesce(max(seq), 1), max(seq) IS NOT NULL)
FROM usage_usagerecord;
ALTER TABLE usage_usagerecord ALTER COLUMN seq SET NOT NULL,
                              ALTER COLUMN recorded_at SET NOT NULL,
                              ADD CONSTRAINT usage_usagerecord_seq_key UNIQUE (seq);
ALTER SEQUENCE usage_record_seq OWNED BY usage_usagerecord.seq;

{JOIN_LOG_FUNCTION}
CREATE TRIGGER usage_record_join_log BEFORE INSERT ON usage_usagerecord
    FOR EACH ROW EXECUTE FUNCTION usage_record_join_log();
"""

BACKWARD = """
DROP TRIGGER usage_record_join_log ON usage_usagerecord;
DROP FUNCTION usage_record_join_log();
ALTER TABLE usage_usagerecord DROP COLUMN seq, DROP COLUMN recorded_at;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0002_usagedaily'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AddField(
                    model_name='usagerecord',
                    name='seq',
                    field=models.BigIntegerField(blank=True, editable=False, unique=True),
                ),
                migrations.AddField(
                    model_name='usagerecord',
                    name='recorded_at',
                    field=models.DateTimeField(blank=True, editable=False),
                ),
            ],
        ),
        migrations.CreateModel(
            name='UsageConsumerCursor',
            fields=[
                ('name', models.CharField(max_length=100, primary_key=True, serialize=False)),
                ('position', models.BigIntegerField(default=0)),
                ('consumed', models.PositiveBigIntegerField(default=0)),
                ('consumed_at', models.DateTimeField(blank=True, null=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, max_length=200)),
                ('last_error_at', models.DateTimeField(blank=True, null=True)),
                ('retry_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
    ]
