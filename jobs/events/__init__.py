"""The external event contract: catalog of event types, versions and envelope."""

# The envelope of spec/events.md, in its order (no Spark here: configuration imports it).
ENVELOPE_FIELDS = (
    "event_id",
    "tenant_id",
    "stream_id",
    "stream_version",
    "global_position",
    "event_type",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "data",
    "metadata",
)
