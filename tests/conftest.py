from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import Settings, load

CONFIG = """\
[paths]
lake = "lake"
warehouse = "warehouse.duckdb"
reports = "reports_out"

[[phone_numbers]]
phone_number_id = 555000001
tenant_id = 1
waba_id = "waba-1"
timezone = "America/Sao_Paulo"
currency = "USD"

[[phone_numbers]]
phone_number_id = 555000002
tenant_id = 1
waba_id = "waba-1"
timezone = "Asia/Kolkata"
currency = "USD"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a convo.toml (two numbers: Sao Paulo and Kolkata)."""
    (tmp_path / "convo.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load(project / "convo.toml")


def message(**fields: object) -> dict[str, object]:
    """A valid inbound message record; override any field."""
    record: dict[str, object] = {
        "message_id": "wamid.1",
        "tenant_id": 1,
        "phone_number_id": 555000001,
        "contact_bsuid": None,
        "contact_phone": "+5511987654321",
        "contact_name": "Ana",
        "direction": "inbound",
        "type": "text",
        "template_name": None,
        "template_category": None,
        "status": "received",
        "error_code": None,
        "timestamp": "2026-09-01T10:00:00Z",
        "delivered_at": None,
        "referral_source": None,
        "conversation_id": None,
        "pricing": None,
    }
    record.update(fields)
    return record


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
