"""The platform's HTTP API -> raw export files, incrementally (DESIGN.md "The HTTP API").

For each resource (conversations, messages) every page of [since, until) is
written as it came (an API page file that `convo ingest` reads), each file by an
atomic rename. The cursor (the `until` of the last complete pull) is stored with
the data in `_cursor.json`; the next pull starts `overlap` before it, and ingest
deduplicates what the overlap fetches twice. 429 and 5xx answers (and dropped
connections) are retried with exponential backoff, honouring Retry-After.
The key is read from GOSENDAPI_KEY and never printed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from pipeline.errors import ConvoError
from pipeline.locking import crash_point

KEY_VARIABLE = "GOSENDAPI_KEY"
RESOURCES = ("conversations", "messages")
CURSOR_FILE = "_cursor.json"     # "_": ingest of the folder skips it
DEFAULT_OVERLAP = timedelta(hours=1)
DEFAULT_START = timedelta(days=30)     # the first pull, with no cursor and no --since
MAX_PAGES = 100_000


class PullError(ConvoError, RuntimeError):
    """The pull cannot go on (bad key, API down past the retries, bad answer)."""


@dataclass(frozen=True)
class PullSettings:
    base_url: str
    out: Path
    since: datetime | None = None
    until: datetime | None = None
    filters: dict[str, str] = field(default_factory=dict)    # DOMAIN R12: status, phone_number_id, ...
    overlap: timedelta = DEFAULT_OVERLAP
    attempts: int = 6
    backoff_seconds: float = 0.5
    timeout_seconds: float = 30.0


@dataclass
class ResourcePull:
    resource: str
    since: datetime
    until: datetime
    pages: int = 0
    records: int = 0
    retries: int = 0
    files: list[Path] = field(default_factory=list)


@dataclass
class PullSummary:
    resources: list[ResourcePull]
    cursor_path: Path


def api_key() -> str:
    key = os.environ.get(KEY_VARIABLE, "").strip()
    if not key:
        raise PullError(f"set the API key in the environment variable {KEY_VARIABLE}")
    return key


def _check_key(key: str) -> None:
    """An HTTP header carries printable ASCII only: anything else would fail inside httpx
    (a traceback, or an error that repeats the header's value) on every request."""
    if not (key.isascii() and key.isprintable()):
        raise PullError(f"the API key in {KEY_VARIABLE} has characters an HTTP header cannot carry "
                        "(non-ASCII or control characters): check its value")


def pull(settings: PullSettings, key: str | None = None,
         on_page: Callable[[str, int, int], None] | None = None,
         sleep: Callable[[float], None] = time.sleep) -> PullSummary:
    secret = key if key is not None else api_key()
    _check_key(secret)
    until = _utc(settings.until) if settings.until else datetime.now(timezone.utc).replace(microsecond=0)
    cursor_path = settings.out / CURSOR_FILE
    cursor = _read_cursor(cursor_path)
    results = []
    with httpx.Client(base_url=settings.base_url.rstrip("/"), timeout=settings.timeout_seconds,
                      headers={"X-API-Key": secret, "Accept": "application/json"}) as client:
        for resource in RESOURCES:
            since = _start(settings, cursor.get(resource), until)
            result = _pull_resource(client, settings, resource, since, until, secret, on_page, sleep)
            cursor[resource] = {"until": _iso(until)}
            _write_json(cursor_path, cursor)            # a resource's cursor moves only once it is complete
            results.append(result)
    return PullSummary(resources=results, cursor_path=cursor_path)


def _start(settings: PullSettings, previous: dict[str, str] | None, until: datetime) -> datetime:
    if settings.since is not None:
        return _utc(settings.since)
    if previous and previous.get("until"):
        return datetime.fromisoformat(previous["until"]) - settings.overlap
    return until - DEFAULT_START


def _pull_resource(client: httpx.Client, settings: PullSettings, resource: str, since: datetime,
                   until: datetime, secret: str, on_page: Callable[[str, int, int], None] | None,
                   sleep: Callable[[float], None]) -> ResourcePull:
    if since >= until:
        raise PullError(f"--since {_iso(since)} is not before --until {_iso(until)}")
    result = ResourcePull(resource=resource, since=since, until=until)
    folder = settings.out / resource / f"{_stamp(since)}_{_stamp(until)}"
    page = 1
    while page <= MAX_PAGES:
        params = {"since": _iso(since), "until": _iso(until), "page": str(page), **settings.filters}
        body, retries = _get(client, f"/v1/{resource}", params, settings, secret, sleep)
        result.retries += retries
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise PullError(f"GET /v1/{resource} page {page}: the answer is not an API page with a data list")
        path = folder / f"page-{page:05d}.json"
        crash_point("pull.page")
        _write_json(path, body)
        result.files.append(path)
        result.pages += 1
        result.records += len(data)
        if on_page is not None:
            on_page(resource, page, len(data))
        if not body.get("has_more"):
            return result
        page += 1
    raise PullError(f"GET /v1/{resource}: more than {MAX_PAGES} pages; pull a shorter --since/--until range")


def _get(client: httpx.Client, path: str, params: dict[str, str], settings: PullSettings, secret: str,
         sleep: Callable[[float], None]) -> tuple[object, int]:
    retries = 0
    for attempt in range(1, settings.attempts + 1):
        try:
            response = client.get(path, params=params)
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}"
            wait = None
        else:
            if response.status_code in (401, 403):
                raise PullError(f"the API refused the key (HTTP {response.status_code} on GET {path}): "
                                f"check {KEY_VARIABLE}")
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                wait = _retry_after(response)
            elif response.status_code != 200:
                raise PullError(f"GET {path} page {params['page']}: HTTP {response.status_code}: "
                                f"{_clean(response.text, secret)}")
            else:
                try:
                    return response.json(), retries
                except json.JSONDecodeError:
                    raise PullError(f"GET {path} page {params['page']}: the answer is not JSON") from None
        if attempt == settings.attempts:
            raise PullError(f"GET {path} page {params['page']}: still failing after {attempt} attempts ({problem})")
        retries += 1
        sleep(wait if wait is not None else settings.backoff_seconds * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(float(value), 300.0)
    except ValueError:
        return None


def _clean(text: str, secret: str) -> str:
    """An error body shown to the user: one line, short, and never the key."""
    line = " ".join(text.split())[:200]
    return line.replace(secret, "***") if secret else line


def _read_cursor(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PullError(f"{path}: the cursor file is not valid JSON; delete it and pass --since") from None
    return value if isinstance(value, dict) else {}


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")   # hidden: ingest never reads a half-written page
    tmp.write_text(json.dumps(value, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _stamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
