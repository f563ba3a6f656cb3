"""The lake's datasets: their columns, natural keys and allowed values.

Input formats are DESIGN.md's; this is what ingest writes under ``lake/`` and
what ``convo build`` reads. All timestamps are UTC (``timestamp[us, tz=UTC]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

UTC_TS = pa.timestamp("us", tz="UTC")

DIRECTIONS = ("inbound", "outbound")
MESSAGE_TYPES = (
    "text", "image", "audio", "video", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "call", "template", "unsupported",
    "unknown",    # an outbound message known only from Meta's statuses, which do not say its type
)
STATUSES = ("received", "sent", "delivered", "read", "failed")
# The latest status wins on dedupe; a later status outranks an earlier one.
STATUS_RANK = {"received": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
TEMPLATE_CATEGORIES = ("marketing", "utility", "authentication")
REFERRAL_SOURCES = ("ad", "page_cta")
PRICING_MODELS = ("CBP", "PMP")
PRICING_TYPES = ("regular", "free_customer_service", "free_entry_point", "free_tier")
PRICING_CATEGORIES = (
    "marketing", "utility", "authentication", "authentication-international",
    "service", "marketing_lite", "referral_conversion",
)
CONVERSATION_STATUSES = ("active", "inactive", "ended")
ENDED_REASONS = ("timeout", "manual_close", "agent_close")
EVENT_TYPES = (
    "whatsapp.conversation.created",
    "whatsapp.conversation.inactive",
    "whatsapp.conversation.ended",
)


@dataclass(frozen=True)
class Dataset:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]          # natural key: one row per key in the lake
    partition_by: str | None      # timestamp column whose UTC date names the partition


# The fields of a messages export (DESIGN.md "messages") but pricing, and how the lake types
# them: a Parquet column already of that type is validated as it is (pipeline/ingest.py).
# The same names as sql/ingest/messages_json.sql reads from JSON.
MESSAGE_FIELDS = {
    "message_id": "text", "tenant_id": "int", "phone_number_id": "int", "contact_bsuid": "text",
    "contact_phone": "text", "contact_name": "text", "direction": "text", "type": "text",
    "template_name": "text", "template_category": "text", "status": "text", "error_code": "int",
    "timestamp": "timestamp", "delivered_at": "timestamp", "referral_source": "text",
    "conversation_id": "int",
}

MESSAGES = Dataset(
    name="messages",
    schema=pa.schema([
        ("message_id", pa.string()),
        ("tenant_id", pa.int64()),
        ("phone_number_id", pa.int64()),
        ("contact_bsuid", pa.string()),
        ("contact_phone", pa.string()),      # E.164 with the leading +
        ("contact_name", pa.string()),
        ("direction", pa.string()),
        ("type", pa.string()),
        ("template_name", pa.string()),
        ("template_category", pa.string()),
        ("status", pa.string()),
        ("error_code", pa.int64()),
        ("sent_at", UTC_TS),                 # the input's `timestamp`
        ("delivered_at", UTC_TS),
        ("referral_source", pa.string()),
        ("conversation_id", pa.int64()),
        ("pricing_billable", pa.bool_()),
        ("pricing_model", pa.string()),
        ("pricing_type", pa.string()),
        ("pricing_category", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]),
    key=("message_id",),
    partition_by="sent_at",
)

CONVERSATIONS = Dataset(
    name="conversations",
    schema=pa.schema([
        ("id", pa.int64()),
        ("tenant_id", pa.int64()),
        ("customer_id", pa.string()),
        ("phone_number_id", pa.int64()),
        ("contact_phone", pa.string()),
        ("contact_bsuid", pa.string()),
        ("contact_name", pa.string()),
        ("status", pa.string()),
        ("ended_reason", pa.string()),
        ("messages_count", pa.int64()),
        ("last_inbound_at", UTC_TS),
        ("last_outbound_at", UTC_TS),
        ("started_at", UTC_TS),
        ("ended_at", UTC_TS),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]),
    key=("id",),
    partition_by="started_at",
)

EVENTS = Dataset(
    name="events",
    schema=pa.schema([
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("created_at", UTC_TS),
        ("conversation_id", pa.int64()),
        ("tenant_id", pa.int64()),
        ("phone_number_id", pa.int64()),
        ("contact_phone", pa.string()),
        ("contact_bsuid", pa.string()),
        ("status", pa.string()),
        ("ended_reason", pa.string()),
        ("started_at", UTC_TS),
        ("ended_at", UTC_TS),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]),
    key=("event_id",),
    partition_by="created_at",
)

TEMPLATES = Dataset(
    name="templates",
    schema=pa.schema([
        ("name", pa.string()),
        ("language", pa.string()),
        ("category", pa.string()),
        ("updated_at", UTC_TS),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]),
    key=("name", "language", "updated_at"),
    partition_by=None,
)

# Meta's pricing_analytics data points (DOMAIN R26): volume and cost per period, and per
# whichever of business phone number, recipient country, pricing category, pricing type and
# tier the request named in dimensions(); a dimension the request did not name is "all",
# stored as '' (so the natural key has no nulls). README "Meta's analytics files".
ANALYTICS_PRICING_TYPES = ("regular", "free_customer_service", "free_entry_point", "free_tier")
# The categories Meta documents; any other well-formed category is kept and counted as one
# convo does not price (never dropped): sql/ingest/pricing_analytics.sql.
ANALYTICS_PRICING_CATEGORIES = (
    "marketing", "marketing_lite", "utility", "authentication", "authentication_international",
    "service", "referral_conversion",
)
# The dimensions a response may be broken down by (Meta's dimensions() names); `dimensions`
# in the lake lists those a response's data points carry, comma-separated, in this order.
PRICING_ANALYTICS_DIMENSIONS = ("PHONE", "COUNTRY", "PRICING_CATEGORY", "PRICING_TYPE", "TIER")
CONVERSATION_ANALYTICS_DIMENSIONS = ("PHONE", "COUNTRY", "CONVERSATION_CATEGORY", "CONVERSATION_TYPE",
                                     "CONVERSATION_DIRECTION")
# conversation_analytics (the CBP years, DOMAIN R13-R17). Meta's docs list FREE_ENTRY; its
# example responses write FREE_ENTRY_POINT: both are read as free_entry_point.
ANALYTICS_CONVERSATION_TYPES = ("regular", "free_tier", "free_entry_point", "free_entry")
ANALYTICS_CONVERSATION_DIRECTIONS = ("business_initiated", "user_initiated", "unknown")
ANALYTICS_CONVERSATION_CATEGORIES = (
    "marketing", "utility", "authentication", "authentication_international", "service", "referral_conversion",
)

PRICING_ANALYTICS = Dataset(
    name="pricing_analytics",
    schema=pa.schema([
        ("waba_id", pa.string()),             # the response's id ('' when it has none)
        ("dimensions", pa.string()),          # e.g. 'PHONE,COUNTRY,PRICING_CATEGORY,PRICING_TYPE,TIER'
        ("granularity", pa.string()),         # HALF_HOUR | DAILY | MONTHLY, from end - start
        ("start_at", UTC_TS),
        ("end_at", UTC_TS),
        ("phone_number", pa.string()),        # the business number as Meta shows it (digits); '' = all
        ("country_code", pa.string()),        # recipient country, ISO 3166-1 alpha-2; '' = all
        ("pricing_category", pa.string()),    # lowercased as Meta writes it; '' = all
        ("pricing_type", pa.string()),        # '' = all
        ("tier", pa.string()),                # Meta's 'lower:upper' or 'lower:MAX'; '' when Meta gives none
        ("tier_lower", pa.int64()),
        ("tier_upper", pa.int64()),           # null for MAX (and when there is no tier)
        ("volume", pa.int64()),
        ("cost_micros", pa.int64()),          # Meta's cost x 1e6, rounded half away from zero; null: no COST
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]),
    key=("waba_id", "dimensions", "start_at", "end_at", "phone_number", "country_code", "pricing_category",
         "pricing_type", "tier"),
    partition_by="start_at",
)

# Meta's conversation_analytics data points (the CBP years): conversations and cost per
# period and per the dimensions the request named ('' = all), like pricing_analytics.
CONVERSATION_ANALYTICS = Dataset(
    name="conversation_analytics",
    schema=pa.schema([
        ("waba_id", pa.string()),
        ("dimensions", pa.string()),          # e.g. 'PHONE,COUNTRY,CONVERSATION_CATEGORY,CONVERSATION_TYPE'
        ("granularity", pa.string()),
        ("start_at", UTC_TS),
        ("end_at", UTC_TS),
        ("phone_number", pa.string()),
        ("country_code", pa.string()),
        ("conversation_category", pa.string()),   # lowercased; '' = all
        ("conversation_type", pa.string()),       # regular | free_tier | free_entry_point; '' = all
        ("conversation_direction", pa.string()),  # business_initiated | user_initiated | unknown; '' = all
        ("conversations", pa.int64()),            # Meta's `conversation` count
        ("cost_micros", pa.int64()),              # null: no COST in the response
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]),
    key=("waba_id", "dimensions", "start_at", "end_at", "phone_number", "country_code", "conversation_category",
         "conversation_type", "conversation_direction"),
    partition_by="start_at",
)

# Meta's volume tier changes (DOMAIN R24), from Cloud API account_update webhooks with event
# VOLUME_BASED_PRICING_TIER_UPDATE (META_FACTS 2.3). One row per change: when several webhooks
# announce the same change, the earliest tier_update_time is kept (pipeline/ingest.py).
META_TIER_UPDATES = Dataset(
    name="meta_tier_updates",
    schema=pa.schema([
        ("waba_id", pa.string()),             # the webhook's entry[].id
        ("tier_update_time", UTC_TS),
        ("pricing_category", pa.string()),    # lowercased as Meta writes it ("utility")
        ("tier_lower", pa.int64()),           # "25000001:50000000" -> 25000001 ...
        ("tier_upper", pa.int64()),           # ... 50000000; null for Meta's "MAX"
        ("effective_month", pa.string()),     # "YYYY-MM", the month the tier applies to
        ("region", pa.string()),              # Meta's market name ("India")
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]),
    key=("waba_id", "effective_month", "pricing_category", "region", "tier_lower"),
    partition_by=None,
)

QUARANTINE = Dataset(
    name="quarantine",
    schema=pa.schema([
        ("source_file", pa.string()),
        ("source_sha256", pa.string()),
        ("line", pa.int64()),
        ("dataset", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]),
    key=("source_sha256", "line", "reason"),
    partition_by=None,
)

DATASETS = {d.name: d for d in (MESSAGES, CONVERSATIONS, EVENTS, TEMPLATES, PRICING_ANALYTICS,
                                CONVERSATION_ANALYTICS, META_TIER_UPDATES)}

# An input whose records become rows of several lake datasets: a Meta Cloud API webhook log
# (DESIGN.md "Meta Cloud API webhook logs") holds messages, statuses and tier changes.
# Every other input is one lake dataset of its own name.
INPUT_DATASETS = {"meta_webhooks": ("messages", "meta_tier_updates")}


def lake_datasets(input_dataset: str) -> tuple[str, ...]:
    """The lake datasets an input's records are written to."""
    return INPUT_DATASETS.get(input_dataset, (input_dataset,))
