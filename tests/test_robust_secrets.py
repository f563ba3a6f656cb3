"""Secrets and PII (issue 7.5): the API key never leaves the process that reads it
(not in output, errors, pages, lake, warehouse, reports, lock files); contact-controlled
text is inert in the reports as Chromium parses them; contact phones and bsuids are
masked unless asked for; SQL never carries a user's value as text (paths with quotes
work, options are bound parameters).
"""

from __future__ import annotations

import secrets
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser import dom
from tests.fake_api import FakeApi, serve
from tests.robust import convo_env, run_convo
from tests.helpers import message

KEY = "sk_live_CONVOSECRET_" + secrets.token_hex(12)

EVIL = [
    "<script>alert('name')</script>",
    "<img src=x onerror=alert(1)>",
    "\"><svg onload=alert(2)>",
    "</title><script>alert(3)</script>",
    "<a href=\"javascript:alert(4)\">click</a>",
    "{{ 7*7 }} {% if true %}jinja{% endif %}",
    "<!-- comment --><style>body{display:none}</style>",
    "Zoë \u202eevil\u202c O'Neil & \"Co\"",
]
PHONES = [f"+55119876543{n:02d}" for n in range(len(EVIL))]
BSUIDS = [f"BR.SecretBsuid{n:04d}xyz" for n in range(len(EVIL))]

CONFIG = """\
[paths]
lake = "la'ke"
warehouse = "ware'house.duckdb"
reports = "rep'orts"
exports = "ex'ports"

[[phone_numbers]]
phone_number_id = 555000001
tenant_id = 1
waba_id = "waba-1"
timezone = "America/Sao_Paulo"
currency = "USD"

[api]
base_url = "{base_url}"
"""


def api_records() -> FakeApi:
    api = FakeApi(key=KEY, page_size=3)
    rows = []
    for n, (name, phone, bsuid) in enumerate(zip(EVIL, PHONES, BSUIDS)):
        hour = f"2026-09-0{1 + n % 3}T1{n % 10}:00:00Z"
        rows.append(message(message_id=f"in{n}", contact_name=name, contact_phone=phone, contact_bsuid=bsuid,
                            timestamp=hour, phone_number_id=555000001))
        rows.append(message(message_id=f"out{n}", contact_name=name, contact_phone=phone, contact_bsuid=bsuid,
                            direction="outbound", type="template", template_name=name[:60],
                            template_category="marketing", status="delivered",
                            timestamp=hour.replace(":00:00Z", ":05:00Z"), delivered_at=hour.replace(":00:00Z", ":05:01Z"),
                            phone_number_id=555000001))
    rows.append(message(message_id="junk", direction=EVIL[0], timestamp="2026-09-01T12:00:00Z"))   # quarantined
    api.records["messages"] = rows
    api.records["conversations"] = [
        {"id": n + 1, "tenant_id": 1, "phone_number_id": 555000001, "contact_phone": phone, "contact_bsuid": bsuid,
         "contact_name": name, "customer_id": name, "status": "active", "started_at": f"2026-09-0{1 + n % 3}T1{n % 10}:00:00Z",
         "messages_count": 2}
        for n, (name, phone, bsuid) in enumerate(zip(EVIL, PHONES, BSUIDS))]
    return api


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """`convo pull` then `convo nightly` (which pulls again) as real processes with the key set."""
    project = tmp_path_factory.mktemp("secrets") / "pro'ject"
    project.mkdir()
    outputs = []
    with serve(api_records()) as api:
        (project / "convo.toml").write_text(CONFIG.format(base_url=api.base_url))
        env = convo_env(GOSENDAPI_KEY=KEY)
        for args in (["pull", "--since", "2026-08-31T00:00:00Z", "--until", "2026-09-05T00:00:00Z"],
                     ["nightly"], ["report", "--show-phones"], ["report"]):
            result = run_convo(*args, "--config", str(project / "convo.toml"), env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            outputs += [result.stdout, result.stderr]
        # Refusals and failures: a wrong key (the fake API echoes it in its 401 body), a wrong URL (404).
        wrong = "sk_wrong_" + KEY[::-1]
        for key, base_url in ((KEY, api.base_url + "/nope"), (wrong, api.base_url)):
            result = run_convo("pull", "--base-url", base_url, "--out", str(project / "failed-pull"),
                               "--since", "2026-09-01T00:00:00Z", env=convo_env(GOSENDAPI_KEY=key))
            assert result.returncode == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
            assert key not in result.stdout + result.stderr
            outputs += [result.stdout, result.stderr]
        sent = [key for *_, key in api.requests]
        assert sent == [KEY] * (len(sent) - 1) + [wrong]     # the key did reach the API, as a header
    return project, outputs


def test_the_api_key_is_in_no_output_and_no_file(pulled: tuple[Path, list[str]]) -> None:
    project, outputs = pulled
    assert not any(KEY in text for text in outputs)
    files = [path for path in project.rglob("*") if path.is_file()]
    kinds = {path.suffix for path in files}
    assert {".json", ".parquet", ".duckdb", ".html", ".lock"} <= kinds, kinds
    needle = KEY.encode()
    leaks = [str(path) for path in files if needle in path.read_bytes()]
    assert leaks == []
    # What was searched holds the pulled data: pages, lake, warehouse, reports.
    assert any("ex'ports" in str(path) and path.name.startswith("page-") for path in files)
    assert any(path.suffix == ".parquet" and b"SecretBsuid0000" in path.read_bytes() for path in files)


# ids: the key is random, and test ids must be the same in every pytest-xdist worker
@pytest.mark.parametrize("key", ["abc\x01" + KEY, KEY + "é", KEY[:8] + "\t" + KEY[8:]],
                         ids=["control-character", "non-ascii", "tab"])
def test_a_key_no_http_header_can_carry_is_a_one_line_error(tmp_path: Path, key: str) -> None:
    result = run_convo("pull", "--base-url", "http://127.0.0.1:9", "--out", str(tmp_path),
                       "--since", "2026-09-01T00:00:00Z", env=convo_env(GOSENDAPI_KEY=key))
    assert result.returncode == 1
    assert result.stderr == ("Error: the API key in GOSENDAPI_KEY has characters an HTTP header cannot carry "
                             "(non-ASCII or control characters): check its value\n")


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_contact_text_is_inert_and_phones_are_masked_in_chromium(pulled: tuple[Path, list[str]]) -> None:
    project, _ = pulled
    pages = sorted((project / "rep'orts").glob("*.html"))
    assert "index.html" in [p.name for p in pages] and len(pages) >= 2
    shown_names = set()
    for page in pages:
        html = page.read_text()
        parsed = Elements()
        parsed.feed(dom(page))                               # the DOM Chromium built
        assert "script" not in parsed.tags and "iframe" not in parsed.tags, page.name
        assert "img" not in parsed.tags, page.name           # only the report's own inline SVG draws
        assert not [a for a in parsed.attributes if a[0].startswith("on")], page.name
        assert not [a for a in parsed.attributes if "javascript:" in a[1].lower()], page.name
        text = "".join(parsed.text)
        shown_names |= {name for name in EVIL if name in text}
        # Masked by default: no phone (E.164 or digits only) and no bsuid, anywhere in the file.
        for phone, bsuid in zip(PHONES, BSUIDS):
            assert phone not in html and phone[1:] not in html and bsuid not in html, page.name
    assert shown_names, "the contact names are shown (as text) somewhere"


def test_show_phones_is_the_only_way_to_see_them(tmp_path: Path, pulled: tuple[Path, list[str]]) -> None:
    project, _ = pulled
    config = project / "convo.toml"
    result = run_convo("report", "--show-phones", "--config", str(config))
    assert result.returncode == 0
    unmasked = "".join(p.read_text() for p in (project / "rep'orts").glob("*.html"))
    assert any(phone in unmasked for phone in PHONES + BSUIDS)
    assert run_convo("report", "--config", str(config)).returncode == 0


def test_user_options_reach_sql_as_bound_parameters(pulled: tuple[Path, list[str]]) -> None:
    """Values a user types: as data, never as SQL (an injection attempt is just an unknown value)."""
    project, _ = pulled
    config = str(project / "convo.toml")
    attempt = "+55' or '1'='1"
    result = run_convo("window", "--phone-number-id", "555000001", "--contact", attempt, "--config", config)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = run_convo("window", "--phone-number-id", "555000001", "--contact", PHONES[0], "--config", config)
    assert result.returncode == 0, result.stderr
    result = run_convo("build", "--as-of", "2026-09-02T00:00:00Z'; drop table messages; --", "--config", config)
    assert result.returncode == 2 and "not an ISO 8601 timestamp" in result.stderr
    result = run_convo("report", "--month", "2026-09' or 1=1", "--config", config)
    assert result.returncode == 2 and "expected YYYY-MM" in result.stderr
    result = run_convo("report", "--month", "2026-09", "--config", config)
    assert result.returncode == 0, result.stderr      # (paths with quotes ran through every step above)
