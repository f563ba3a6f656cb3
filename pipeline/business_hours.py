"""Business hours of convo.toml ([[phone_numbers]] business_hours, holidays) as tables
the SQL models read: ``ref_business_hours`` (phone_number_id, iso_weekday,
opens_second, closes_second: seconds after local midnight) and ``ref_business_holidays``
(phone_number_id, holiday). A number without business_hours has no rows in either; the
business-time columns of its conversations are null (sql/intermediate/int_business_clock.sql).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipeline import refdata
from pipeline.config import Settings


def register(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    hours = [(p.phone_number_id, *span) for p in settings.phone_numbers if p.business_hours is not None
             for span in p.business_hours]
    configured = [p for p in settings.phone_numbers if p.business_hours is not None]
    holidays = [(p.phone_number_id, day) for p in configured for day in p.holidays]
    numbers = pa.table({"phone_number_id": pa.array([p.phone_number_id for p in configured], pa.int64())})
    hours_table = pa.table({
        "phone_number_id": pa.array([row[0] for row in hours], pa.int64()),
        "iso_weekday": pa.array([row[1] for row in hours], pa.int32()),
        "opens_second": pa.array([row[2] for row in hours], pa.int32()),
        "closes_second": pa.array([row[3] for row in hours], pa.int32()),
    })
    holidays_table = pa.table({
        "phone_number_id": pa.array([row[0] for row in holidays], pa.int64()),
        "holiday": pa.array([row[1] for row in holidays], pa.date32()),
    })
    for name, table in (("ref_business_numbers", numbers), ("ref_business_hours", hours_table),
                        ("ref_business_holidays", holidays_table)):
        refdata.replace_table(con, name, table)
