"""Baselines (issue 6): convo's PMP pricing step against pandas and Polars on the same lake.

    .venv/bin/python bench/baselines.py --all --lake L --warehouse W --config C --out-dir D
    .venv/bin/python bench/baselines.py --engine pandas --lake L --warehouse W --config C --json OUT
    .venv/bin/python bench/baselines.py --steps --lake L --warehouse W --config C   # Polars step by step

The step, as an analyst would state it (DOMAIN R2-R6, R15, R18-R20, R22, R23, R25, R27):
for every delivered outbound message (status delivered or read) whose delivery's local
date on its business number (R1, R27; numbers missing from convo.toml: UTC) falls in
regime B (per-message pricing, data/pricing_rules.csv: 2025-07-01 to 2026-09-30):
* its thread: phone_number_id x contact key (the bsuid, else the bsuid first seen with
  that phone in the tenant, else the phone: R2, R3);
* its category: a template's own category (authentication-international per R25),
  `service` for every other message; templates without a category are left out;
* is the customer service window open: an inbound message of the thread in
  (t - 24 h, t], t = the delivery (R4, R6);
* is it inside a free entry point window: a user arrival by ad or Page button, the
  thread's first delivered outbound message within 24 h of it opens 72 h of free
  messages from its delivery, none opening while one is open (R15, R19);
* is it a utility template inside a CBP utility conversation opened before the switch
  (R20; conversations of 24 h chained over the thread's utility templates delivered on
  CBP dates, outside entry point windows, R13);
* charged or free (R18, R19): free inside an entry point window, every non-template
  message, a utility template in an open window or in such a conversation; every other
  template is charged;
* its market (R22) and its list rate: the rate card's first tier (tier_from = 1) for
  (market, category, the number's currency) in force on the local date (R23). Volume
  tiers (R24) are left out, so only what they do not change is compared.
Answer: per (market, category), charged and free messages and the list-rate cost of the
charged ones in micro-units.

One lookup is given to the baselines rather than recomputed: each contact's country
(tenant_id, contact_key -> country_code), read once from convo's `messages`
(calling-code prefixes of the phonenumbers library, R22) into <out-dir>/contact_countries.parquet.
Durations (24 h, 72 h), regime dates, the market map, authentication-international
countries and the rate card are read from data/ and convo.toml, as convo does.

Engines, each in its own child process (its wall, CPU and peak RSS are its own):
* pandas: read_parquet, sort_values, groupby/ffill, merge_asof and Python loops for the
  two chains (entry point windows, utility conversations): what an analyst writes.
* polars: lazy scan, join_asof for the windows, the two chains as iterated join_asof on
  their (small) candidates; each step lazy, collected at its end (see polars_answer).
* convo: the models that compute this step, rerun in a fresh process on a copy of the
  warehouse the way bench/billing.py does (pipeline.build's discover/_run/_register_lake):
  CONVO_MODELS below, from staging (thread keys, countries, local dates) to
  billable_units. Its answer is read from billable_units (scenario actual, regime B),
  each charged unit priced at its first-tier rate from int_bill_rate_quarters.
run_all checks that the three answers agree exactly and raises when they do not.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import paths, policy, pricing  # noqa: E402
from pipeline.build import _register_lake, _run, discover  # noqa: E402  (the build's own steps)
from pipeline.config import load  # noqa: E402
from pipeline.models import define_functions  # noqa: E402

ENGINES = ("pandas", "polars", "convo")
# The convo models this step needs, upstream of the bill included (they give the
# baselines' thread keys, countries and local dates): all are rerun and timed.
CONVO_UPSTREAM = ("stg_messages", "stg_templates", "int_contact_keys", "int_contacts",
                  "messages")
CONVO_BILLING = ("int_bill_calendar", "int_bill_outbound", "int_bill_entry_points", "int_thread_messages",
                 "int_bill_cbp_conversations", "int_bill_messages",
                 "int_bill_rules_daily", "int_bill_rate_quarters", "billable_units")
CONVO_MODELS = CONVO_UPSTREAM + CONVO_BILLING
SUMMARY_KEYS = ("engine", "messages", "wall_s", "cpu_s", "peak_rss_mb", "charged", "free", "cost_micros")
LOOKUP = "contact_countries.parquet"
CHARGED_TEMPLATE_CATEGORIES = ("marketing", "authentication", "authentication-international")  # R19
COLUMNS = ["message_id", "tenant_id", "phone_number_id", "contact_bsuid", "contact_phone", "direction", "type",
           "template_name", "template_category", "status", "sent_at", "delivered_at", "referral_source"]


# ---------------------------------------------------------------- reference data

@dataclass(frozen=True)
class Reference:
    """Everything small the step reads besides the lake: convo.toml and data/."""
    timezones: dict[int, str]
    currencies: dict[int, str]
    default_currency: str
    pmp_from: date                 # regime B
    pmp_to: date
    cbp_from: date
    cbp_to: date
    service_window: timedelta      # R4
    cbp_conversation: timedelta    # R13
    entry_point_reply_within: timedelta   # R15
    entry_point_window: timedelta
    business_country: str | None
    auth_international_eligible: bool
    auth_international: tuple[tuple[str, date, date | None], ...]
    market_map: tuple[tuple[str, str, date, date | None], ...]
    list_rates: tuple[tuple[str, str, str, date, int], ...]   # market, category, currency, from, tier-1 rate
    contacts: Path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _hours(rows: list[dict[str, str]], key: str) -> timedelta:
    values = {row["value"] for row in rows if row["key"] == key}
    if len(values) != 1:
        raise RuntimeError(f"the baselines assume one value of {key} for all dates; data/ has {sorted(values)}")
    return timedelta(hours=float(values.pop()))


def reference(config: Path, contacts: Path) -> Reference:
    settings = load(config)
    data = paths.data_dir()
    rules = _rows(data / "pricing_rules.csv")
    regime_b = [row for row in rules if row["regime"] == "B"]
    cbp = [row for row in rules if row["pricing_model"] == "CBP"]
    card = [row for row in _rows(settings.billing.rate_card) if row["tier_from"] == "1"]
    return Reference(
        timezones={p.phone_number_id: p.timezone for p in settings.phone_numbers},
        currencies={p.phone_number_id: p.currency for p in settings.phone_numbers},
        default_currency=card[0]["currency"],
        pmp_from=min(_day(row["effective_from"]) for row in regime_b),
        pmp_to=max(_day(row["effective_to"]) for row in regime_b),
        cbp_from=min(_day(row["effective_from"]) for row in cbp),
        cbp_to=max(_day(row["effective_to"]) for row in cbp),
        service_window=_hours(_rows(data / "policy.csv"), "customer_service_window_hours"),
        cbp_conversation=_hours(_rows(data / "pricing_policy.csv"), "cbp_conversation_hours"),
        entry_point_reply_within=_hours(_rows(data / "pricing_policy.csv"), "entry_point_reply_within_hours"),
        entry_point_window=_hours(_rows(data / "pricing_policy.csv"), "entry_point_window_hours"),
        business_country=settings.billing.business_country,
        auth_international_eligible=settings.billing.auth_international_eligible,
        auth_international=tuple((row["country_code"], _day(row["effective_from"]), _day(row["effective_to"]))
                                 for row in _rows(data / "auth_international.csv")),
        market_map=tuple((row["country_code"], row["market"], _day(row["effective_from"]), _day(row["effective_to"]))
                         for row in _rows(data / "market_map.csv")),
        list_rates=tuple((row["market"], row["category"], row["currency"], _day(row["effective_from"]),
                          int(row["rate_micros"])) for row in card),
        contacts=contacts,
    )


def _in_force(day: date, start: date, end: date | None) -> bool:
    return start <= day and (end is None or day < end)


def pmp_days(ref: Reference, last: date) -> list[date]:
    """Every local date of regime B up to `last` (the lookups below are per day)."""
    end = min(ref.pmp_to, last + timedelta(days=1))
    return [ref.pmp_from + timedelta(days=n) for n in range((end - ref.pmp_from).days)]


def country_days(ref: Reference, countries: list[str | None], days: list[date]) -> list[dict[str, object]]:
    """(country, day) -> market (R22, 'Other' when unmapped) and whether R25 applies."""
    table = []
    for country in countries:
        for day in days:
            market = next((m for c, m, start, end in ref.market_map if c == country and _in_force(day, start, end)),
                          "Other")
            international = (ref.auth_international_eligible and country is not None
                             and country != ref.business_country
                             and any(c == country and _in_force(day, start, end)
                                     for c, start, end in ref.auth_international))
            table.append({"country_code": country, "billing_date": day, "market": market,
                          "is_auth_international": international})
    return table


def rate_days(ref: Reference, days: list[date]) -> list[dict[str, object]]:
    """(market, category, currency, day) -> the first tier's rate in force (R23)."""
    keys = sorted({(market, category, currency) for market, category, currency, _, _ in ref.list_rates})
    table = []
    for market, category, currency in keys:
        editions = sorted((start, rate) for m, c, cur, start, rate in ref.list_rates
                          if (m, c, cur) == (market, category, currency))
        for day in days:
            rates = [rate for start, rate in editions if start <= day]
            if rates:
                table.append({"market": market, "category": category, "currency": currency, "billing_date": day,
                              "rate_micros": rates[-1]})
    return table


def message_files(lake: Path) -> list[Path]:
    return sorted((lake / "messages").glob("date=*/*.parquet"))


def lake_messages(lake: Path) -> int:
    return sum(pq.read_metadata(path).num_rows for path in message_files(lake))


def build_lookup(warehouse: Path, target: Path) -> Path:
    """The contact -> country lookup the baselines are given, from convo's messages (one country per contact)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute(f"copy (select distinct tenant_id, contact_key, country_code from messages) to '{target}' "
                "(format parquet)")
    con.close()
    return target


# ---------------------------------------------------------------- pandas

def pandas_answer(lake: Path, ref: Reference) -> list[dict[str, object]]:
    import pandas as pd

    thread = ["phone_number_id", "contact_key"]
    df = pd.read_parquet(lake / "messages", columns=COLUMNS)

    # thread key (R2): bsuid, else the bsuid first seen with the phone in the tenant, else the phone
    pairs = df.loc[df["contact_bsuid"].notna() & df["contact_phone"].notna(),
                   ["tenant_id", "contact_phone", "contact_bsuid", "sent_at"]]
    first_bsuid = (pairs.sort_values(["sent_at", "contact_bsuid"])
                   .drop_duplicates(["tenant_id", "contact_phone"])
                   .rename(columns={"contact_bsuid": "phone_bsuid"})[["tenant_id", "contact_phone", "phone_bsuid"]])
    df = df.merge(first_bsuid, on=["tenant_id", "contact_phone"], how="left")
    df["contact_key"] = df["contact_bsuid"].fillna(df["phone_bsuid"]).fillna(df["contact_phone"])

    inbound = df.loc[df["direction"] == "inbound", thread + ["sent_at", "referral_source"]]
    out = df.loc[(df["direction"] == "outbound") & df["status"].isin(["delivered", "read"])].copy()
    del df
    out["event_at"] = out["delivered_at"].fillna(out["sent_at"])
    out["billing_date"] = pd.NaT
    out["billing_date"] = out["billing_date"].astype("datetime64[us]")
    for number in out["phone_number_id"].unique():
        rows = out["phone_number_id"] == number
        local = out.loc[rows, "event_at"].dt.tz_convert(ref.timezones.get(int(number), "UTC"))
        out.loc[rows, "billing_date"] = local.dt.tz_localize(None).dt.normalize()
    out["is_template"] = (out["type"] == "template") | out["template_name"].notna()
    out["category"] = out["template_category"].where(out["is_template"], "service")

    # customer service window (R4, R6): the last inbound at or before the delivery
    events = pd.concat([
        inbound[thread + ["sent_at"]].rename(columns={"sent_at": "at"}).assign(is_inbound=True),
        out[thread + ["event_at", "message_id"]].rename(columns={"event_at": "at"}).assign(is_inbound=False),
    ], ignore_index=True)
    events = events.sort_values(thread + ["at", "is_inbound"], ascending=[True, True, True, False])
    events["last_inbound_at"] = events["at"].where(events["is_inbound"])
    events["last_inbound_at"] = events.groupby(thread)["last_inbound_at"].ffill()
    last_inbound = events.loc[~events["is_inbound"], ["message_id", "last_inbound_at"]]
    out = out.merge(last_inbound, on="message_id", how="left")
    out["is_service_window_open"] = (out["event_at"] < out["last_inbound_at"] + ref.service_window).fillna(False)

    # entry point windows (R15, R19): first delivered outbound within reach of each arrival, then a chain
    arrivals = (inbound.loc[inbound["referral_source"].notna(), thread + ["sent_at"]]
                .rename(columns={"sent_at": "arrived_at"}).sort_values("arrived_at"))
    replies = (out[thread + ["event_at", "message_id"]].sort_values(["event_at", "message_id"])
               .drop_duplicates(thread + ["event_at"]).rename(columns={"event_at": "opened_at"}))
    first_replies = pd.merge_asof(arrivals, replies, left_on="arrived_at", right_on="opened_at", by=thread,
                                  direction="forward")
    first_replies = first_replies[first_replies["opened_at"]
                                  < first_replies["arrived_at"] + ref.entry_point_reply_within]
    candidates = first_replies.drop_duplicates(thread + ["opened_at"]).sort_values(thread + ["opened_at"])
    windows = []
    expires: dict[tuple[int, str], pd.Timestamp] = {}
    for number, key, opened_at in candidates[thread + ["opened_at"]].itertuples(index=False):
        if (number, key) not in expires or opened_at >= expires[(number, key)]:
            expires[(number, key)] = opened_at + ref.entry_point_window
            windows.append((number, key, opened_at, expires[(number, key)]))
    windows_df = pd.DataFrame(windows, columns=thread + ["window_opened_at", "window_expires_at"])
    windows_df["window_opened_at"] = windows_df["window_opened_at"].astype(out["event_at"].dtype)
    windows_df["window_expires_at"] = windows_df["window_expires_at"].astype(out["event_at"].dtype)
    out = pd.merge_asof(out.sort_values("event_at"), windows_df.sort_values("window_opened_at"),
                        left_on="event_at", right_on="window_opened_at", by=thread, direction="backward")
    out["is_in_entry_point_window"] = (out["event_at"] < out["window_expires_at"]).fillna(False)

    # R20: the last CBP utility conversation of each thread opened before the switch (R13 chain)
    cbp_from, cbp_to = pd.Timestamp(ref.cbp_from), pd.Timestamp(ref.cbp_to)
    utility = out.loc[out["is_template"] & (out["category"] == "utility") & ~out["is_in_entry_point_window"]
                      & (out["billing_date"] >= cbp_from) & (out["billing_date"] < cbp_to),
                      thread + ["event_at"]].sort_values(thread + ["event_at"])
    openers: dict[tuple[int, str], pd.Timestamp] = {}
    for number, key, event_at in utility.itertuples(index=False):
        if (number, key) not in openers or event_at >= openers[(number, key)] + ref.cbp_conversation:
            openers[(number, key)] = event_at
    last_openers = pd.DataFrame([(number, key, at) for (number, key), at in openers.items()],
                                columns=thread + ["cbp_utility_opened_at"])
    last_openers["cbp_utility_opened_at"] = last_openers["cbp_utility_opened_at"].astype(out["event_at"].dtype)

    pmp = out[(out["billing_date"] >= pd.Timestamp(ref.pmp_from)) & (out["billing_date"] < pd.Timestamp(ref.pmp_to))
              & out["category"].notna()]
    pmp = pmp.merge(last_openers, on=thread, how="left")
    pmp["is_in_open_cbp_conversation"] = (pmp["is_template"] & (pmp["category"] == "utility")
                                          & (pmp["event_at"] < pmp["cbp_utility_opened_at"] + ref.cbp_conversation)
                                          ).fillna(False)

    # market and R25 per (country, day); the rate per (market, category, currency, day)
    contacts = pd.read_parquet(ref.contacts)
    pmp = pmp.merge(contacts, on=["tenant_id", "contact_key"], how="left")
    days = pmp_days(ref, pmp["billing_date"].max().date()) if len(pmp) else []
    countries = pd.DataFrame(country_days(ref, list(contacts["country_code"].unique()), days))
    if len(countries):
        countries["billing_date"] = pd.to_datetime(countries["billing_date"]).astype("datetime64[us]")
        pmp = pmp.merge(countries, on=["country_code", "billing_date"], how="left")
    else:
        pmp = pmp.assign(market=None, is_auth_international=False)
    pmp["market"] = pmp["market"].fillna("Other")
    pmp.loc[(pmp["category"] == "authentication") & pmp["is_auth_international"].fillna(False).astype(bool),
            "category"] = "authentication-international"
    pmp["currency"] = pmp["phone_number_id"].map(ref.currencies).fillna(ref.default_currency)
    rates = pd.DataFrame(rate_days(ref, days))
    if len(rates):
        rates["billing_date"] = pd.to_datetime(rates["billing_date"]).astype("datetime64[us]")
        pmp = pmp.merge(rates, on=["market", "category", "currency", "billing_date"], how="left")
    else:
        pmp["rate_micros"] = None

    # charged or free (R18-R20)
    free = (pmp["is_in_entry_point_window"] | (pmp["category"] == "service")
            | ((pmp["category"] == "utility") & (pmp["is_service_window_open"] | pmp["is_in_open_cbp_conversation"])))
    pmp["charged"] = (~free).astype("int64")
    pmp["free"] = free.astype("int64")
    pmp["cost_micros"] = pmp["rate_micros"].where(~free, 0).fillna(0).astype("int64")
    answer = pmp.groupby(["market", "category"], as_index=False)[["charged", "free", "cost_micros"]].sum()
    return [{"market": row.market, "category": row.category, "charged": int(row.charged), "free": int(row.free),
             "cost_micros": int(row.cost_micros)} for row in answer.itertuples(index=False)]


# ---------------------------------------------------------------- polars

def _polars_chain(candidates, at: str, length: timedelta, thread: list[str]):
    """Openers of a chain per thread: the first candidate, then the first at or after the
    previous opener + length, and so on (R13, R15): one join_asof per link."""
    import polars as pl

    candidates = candidates.sort(at)
    frontier = candidates.group_by(thread).agg(pl.col(at).min())
    links = [frontier]
    while frontier.height:
        frontier = (frontier.select(*thread, (pl.col(at) + length).alias("reach"))
                    .sort("reach")
                    .join_asof(candidates.select(*thread, pl.col(at), pl.col(at).alias("next_at")),
                               left_on="reach", right_on="next_at", by=thread, strategy="forward",
                               check_sortedness=False, coalesce=False)
                    .filter(pl.col(at).is_not_null())
                    .select(*thread, at))
        links.append(frontier)
    return pl.concat(links)


def polars_answer(lake: Path, ref: Reference, steps: dict[str, float] | None = None) -> list[dict[str, object]]:
    """The step in Polars: lazy within each step, collected at each step's end (the
    seconds of each go into `steps`). The two chains are walked link by link on
    collected frames, so the frames they start from are collected anyway; left lazy to
    the end, the plan re-read the lake and redid the window join once for each chain
    and once for the answer (three times: 81 s instead of ~20 s at 10 million messages)."""
    import polars as pl

    steps = {} if steps is None else steps
    clock = [time.perf_counter()]

    def step(name: str, frame: pl.LazyFrame) -> pl.LazyFrame:
        frame = frame.collect().lazy()
        now = time.perf_counter()
        steps[name] = round(now - clock[0], 2)
        clock[0] = now
        return frame

    thread = ["phone_number_id", "contact_key"]
    messages = pl.scan_parquet([str(path) for path in message_files(lake)], hive_partitioning=False).select(COLUMNS)

    pairs = (messages.filter(pl.col("contact_bsuid").is_not_null() & pl.col("contact_phone").is_not_null())
             .group_by("tenant_id", "contact_phone")
             .agg(pl.col("contact_bsuid").sort_by("sent_at", "contact_bsuid").first().alias("phone_bsuid")))
    keyed = (messages.join(pairs, on=["tenant_id", "contact_phone"], how="left")
             .with_columns(contact_key=pl.coalesce("contact_bsuid", "phone_bsuid", "contact_phone")))

    local_date = pl.col("event_at").dt.convert_time_zone("UTC").dt.date()
    for number, zone in ref.timezones.items():
        local_date = (pl.when(pl.col("phone_number_id") == number)
                      .then(pl.col("event_at").dt.convert_time_zone(zone).dt.date()).otherwise(local_date))
    currency = pl.lit(ref.default_currency)
    for number, code in ref.currencies.items():
        currency = pl.when(pl.col("phone_number_id") == number).then(pl.lit(code)).otherwise(currency)
    is_template = (pl.col("type") == "template") | pl.col("template_name").is_not_null()
    out = (keyed.filter((pl.col("direction") == "outbound") & pl.col("status").is_in(["delivered", "read"]))
           .with_columns(event_at=pl.coalesce("delivered_at", "sent_at"))
           .with_columns(billing_date=local_date, is_template=is_template, currency=currency)
           .with_columns(category=pl.when(pl.col("is_template")).then(pl.col("template_category"))
                         .otherwise(pl.lit("service")))
           .select("message_id", "tenant_id", *thread, "event_at", "billing_date", "is_template", "category",
                   "currency"))
    inbound = keyed.filter(pl.col("direction") == "inbound").select(*thread, "sent_at", "referral_source")
    out, inbound = (frame.lazy() for frame in pl.collect_all([out, inbound]))
    out = step("read, thread keys, local dates", out)

    # customer service window (R4, R6): the last inbound at or before the delivery
    last_inbound = (inbound.select(*thread, pl.col("sent_at").alias("inbound_at"),
                                   pl.col("sent_at").alias("last_inbound_at")).sort("inbound_at"))
    out = (out.sort("event_at")
           .join_asof(last_inbound, left_on="event_at", right_on="inbound_at", by=thread, strategy="backward",
                      check_sortedness=False, coalesce=False)
           .with_columns(is_service_window_open=(pl.col("event_at") < pl.col("last_inbound_at") + ref.service_window)
                         .fill_null(False))
           .drop("inbound_at", "last_inbound_at"))
    out = step("customer service window (join_asof)", out)

    # entry point windows (R15, R19): the chain is walked on the (few) first replies
    replies = (out.select(*thread, "event_at", "message_id").sort("event_at", "message_id")
               .unique([*thread, "event_at"], keep="first")
               .select(*thread, pl.col("event_at").alias("opened_at")).sort("opened_at"))
    first_replies = (inbound.filter(pl.col("referral_source").is_not_null())
                     .select(*thread, pl.col("sent_at").alias("arrived_at")).sort("arrived_at")
                     .join_asof(replies.with_columns(reply_at=pl.col("opened_at")), left_on="arrived_at",
                                right_on="reply_at", by=thread, strategy="forward", check_sortedness=False,
                                coalesce=False)
                     .filter(pl.col("opened_at") < pl.col("arrived_at") + ref.entry_point_reply_within)
                     .select(*thread, "opened_at").unique())
    windows = (_polars_chain(first_replies.collect(), "opened_at", ref.entry_point_window, thread)
               .with_columns(expires_at=pl.col("opened_at") + ref.entry_point_window).lazy())
    out = (out.sort("event_at")
           .join_asof(windows.with_columns(window_at=pl.col("opened_at")).sort("window_at"), left_on="event_at",
                      right_on="window_at", by=thread, strategy="backward", check_sortedness=False, coalesce=False)
           .with_columns(is_in_entry_point_window=(pl.col("event_at") < pl.col("expires_at")).fill_null(False))
           .drop("opened_at", "expires_at", "window_at"))
    out = step("entry point windows (chain, join_asof)", out)

    # R20: the last CBP utility conversation of each thread opened before the switch (R13 chain)
    utility = (out.filter(pl.col("is_template") & (pl.col("category") == "utility")
                          & ~pl.col("is_in_entry_point_window")
                          & pl.col("billing_date").is_between(ref.cbp_from, ref.cbp_to, closed="left"))
               .select(*thread, "event_at").collect())
    last_openers = (_polars_chain(utility, "event_at", ref.cbp_conversation, thread)
                    .group_by(thread).agg(pl.col("event_at").max().alias("cbp_utility_opened_at")).lazy())
    last_openers = step("R20 utility chain", last_openers)

    contacts = pl.scan_parquet(ref.contacts)
    last_day = ref.pmp_to - timedelta(days=1)
    days = pmp_days(ref, last_day)
    countries = pl.LazyFrame(country_days(ref, contacts.select("country_code").unique().collect()["country_code"]
                                          .to_list(), days),
                             schema={"country_code": pl.String, "billing_date": pl.Date, "market": pl.String,
                                     "is_auth_international": pl.Boolean})
    rates = pl.LazyFrame(rate_days(ref, days), schema={"market": pl.String, "category": pl.String,
                                                        "currency": pl.String, "billing_date": pl.Date,
                                                        "rate_micros": pl.Int64})
    free = (pl.col("is_in_entry_point_window") | (pl.col("category") == "service")
            | ((pl.col("category") == "utility")
               & (pl.col("is_service_window_open") | pl.col("is_in_open_cbp_conversation"))))
    answer = (out.filter(pl.col("billing_date").is_between(ref.pmp_from, ref.pmp_to, closed="left")
                         & pl.col("category").is_not_null())
              .join(last_openers, on=thread, how="left")
              .with_columns(is_in_open_cbp_conversation=(
                  pl.col("is_template") & (pl.col("category") == "utility")
                  & (pl.col("event_at") < pl.col("cbp_utility_opened_at") + ref.cbp_conversation)).fill_null(False))
              .join(contacts, on=["tenant_id", "contact_key"], how="left")
              .join(countries, on=["country_code", "billing_date"], how="left")
              .with_columns(market=pl.col("market").fill_null("Other"),
                            category=pl.when((pl.col("category") == "authentication")
                                             & pl.col("is_auth_international").fill_null(False))
                            .then(pl.lit("authentication-international")).otherwise(pl.col("category")))
              .join(rates, on=["market", "category", "currency", "billing_date"], how="left")
              .with_columns(is_free=free)
              .group_by("market", "category")
              .agg(charged=(~pl.col("is_free")).sum().cast(pl.Int64), free=pl.col("is_free").sum().cast(pl.Int64),
                   cost_micros=pl.col("rate_micros").filter(~pl.col("is_free")).sum().cast(pl.Int64))
              .collect())
    step("price and add up", answer.lazy())
    return answer.to_dicts()


# ---------------------------------------------------------------- convo

CONVO_ANSWER = """
with units as (
    select * from billable_units
    where unit = 'message' and regime = 'B' and pricing_type is not null
),

list_rates as (
    select quarter_start, market, category, currency, rate_micros
    from int_bill_rate_quarters
    where tier_from = 1
),

final as (
    select
        units.market,
        units.category,
        count(*) filter (where units.pricing_type = 'regular') as charged,
        count(*) filter (where units.pricing_type <> 'regular') as free,
        coalesce(sum(list_rates.rate_micros) filter (where units.pricing_type = 'regular'), 0) as cost_micros,
        coalesce(sum(units.cost_micros) filter (where units.pricing_type = 'regular'), 0) as tiered_cost_micros
    from units
    left join list_rates
        on list_rates.quarter_start = cast(date_trunc('quarter', units.billing_date) as date)
        and list_rates.market = units.market
        and list_rates.category = units.rate_category
        and list_rates.currency = units.currency
    group by units.market, units.category
)

select * from final
"""


def convo_answer(lake: Path, warehouse: Path, config: Path,
                 scratch: Path) -> tuple[list[dict[str, object]], dict[str, float], float, float]:
    """The models of CONVO_MODELS rerun on a copy of the warehouse; (answer, seconds per model, wall, cpu)."""
    settings = load(config)
    copy = scratch / "baselines-convo.duckdb"
    shutil.copyfile(warehouse, copy)
    con = duckdb.connect(str(copy))
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    _register_lake(con, lake)
    as_of = con.execute("select max(sent_at) from lake_messages").fetchall()[0][0]
    con.execute("set variable as_of = ?::timestamptz", [as_of])
    policy.apply(con, as_of)
    pricing.register(con, settings, as_of)
    define_functions(con)
    models = [model for model in discover() if model.name in CONVO_MODELS]
    per_model: dict[str, float] = {}
    wall, cpu = time.perf_counter(), _cpu()
    for model in models:
        begun = time.perf_counter()
        _run(con, model)
        per_model[model.name] = round(time.perf_counter() - begun, 3)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    cursor = con.execute(CONVO_ANSWER)
    names = [column[0] for column in cursor.description]
    answer = [dict(zip(names, row)) for row in cursor.fetchall()]
    con.close()
    copy.unlink()
    return answer, per_model, wall, cpu


# ---------------------------------------------------------------- one step, four ways

WINDOW_INPUTS = """
create temp table step_outbound as
    select phone_number_id, contact_key, event_at, message_id from int_bill_messages;
create temp table step_inbound as
    select phone_number_id, contact_key, sent_at from messages where direction = 'inbound';
"""

# convo's formulation until 2026-12-07 (int_bill_timeline): one window over the union of both
WINDOW_DUCKDB = """
create or replace temp table step_window as
with events as (
    select phone_number_id, contact_key, sent_at as event_at, true as is_inbound, null as message_id
    from step_inbound
    union all
    select phone_number_id, contact_key, event_at, false, message_id from step_outbound
),

windowed as (
    select
        message_id,
        is_inbound,
        max(event_at) filter (where is_inbound) over (
            partition by phone_number_id, contact_key order by event_at
            range between unbounded preceding and current row
        ) as last_inbound_at
    from events
)

select message_id, last_inbound_at from windowed where not is_inbound
"""

WINDOW_ASOF = """
create or replace temp table step_asof as
select step_outbound.message_id, step_inbound.sent_at as last_inbound_at
from step_outbound
asof left join step_inbound
    on step_inbound.phone_number_id = step_outbound.phone_number_id
    and step_inbound.contact_key = step_outbound.contact_key
    and step_inbound.sent_at <= step_outbound.event_at
"""


def window_step(warehouse: Path) -> dict[str, float]:
    """The last inbound message at or before each delivery (the service window's step),
    on the same in-memory inputs taken from convo's tables: DuckDB as convo writes it (a
    window over the union), DuckDB's ASOF JOIN, Polars join_asof, Polars sort + forward
    fill over the thread. Seconds each; the four must find the same instants."""
    import polars as pl

    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    con.execute(WINDOW_INPUTS)
    thread = ["phone_number_id", "contact_key"]
    outbound = pl.from_arrow(con.sql("select * from step_outbound").to_arrow_table())
    inbound = pl.from_arrow(con.sql("select * from step_inbound").to_arrow_table())
    seconds: dict[str, float] = {}
    answers = {}
    for name, sql, table in (("duckdb window (convo)", WINDOW_DUCKDB, "step_window"),
                             ("duckdb asof join", WINDOW_ASOF, "step_asof")):
        started = time.perf_counter()
        con.execute(sql)
        seconds[name] = round(time.perf_counter() - started, 2)
        answers[name] = con.execute("select count(*), count(last_inbound_at), "
                                    f"sum(epoch_us(last_inbound_at) // 1000000) from {table}").fetchall()[0]
    started = time.perf_counter()
    asof = (outbound.sort("event_at")
            .join_asof(inbound.select(*thread, pl.col("sent_at").alias("last_inbound_at")).sort("last_inbound_at"),
                       left_on="event_at", right_on="last_inbound_at", by=thread, strategy="backward",
                       check_sortedness=False, coalesce=False))
    seconds["polars join_asof"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    events = pl.concat([
        inbound.select(*thread, pl.col("sent_at").alias("at"), pl.lit(True).alias("is_inbound"),
                       pl.lit(None, pl.String).alias("message_id")),
        outbound.select(*thread, pl.col("event_at").alias("at"), pl.lit(False).alias("is_inbound"), "message_id"),
    ])
    filled = (events.sort(*thread, "at", "is_inbound", descending=[False, False, False, True])
              .with_columns(last_inbound_at=pl.when("is_inbound").then(pl.col("at")).forward_fill().over(thread))
              .filter(~pl.col("is_inbound")))
    seconds["polars sort + forward_fill over"] = round(time.perf_counter() - started, 2)
    for name, frame in (("polars join_asof", asof), ("polars sort + forward_fill over", filled)):
        found = frame["last_inbound_at"]
        answers[name] = (frame.height, found.count(), int(found.dt.epoch("s").sum()))
    con.close()
    if len(set(answers.values())) != 1:
        raise EnginesDisagree(f"the service window step differs: {answers}")
    return seconds


# The window int_bill_timeline ran until 2026-12-07 (last inbound at or before, next
# inbound after each delivery; now read from int_thread_messages' one sorted pass),
# as a step of its own: from the warehouse's tables into a written table.
# Both ways read these two inputs.
TIMELINE_INBOUND = "select phone_number_id, contact_key, sent_at from messages where direction = 'inbound'"
TIMELINE_OUTBOUND = "select phone_number_id, contact_key, event_at, message_id from int_bill_messages"
TIMELINE_EVENTS = f"""
select phone_number_id, contact_key, sent_at as event_at, true as is_inbound, null::varchar as message_id
from ({TIMELINE_INBOUND})
union all
select phone_number_id, contact_key, event_at, false, message_id from ({TIMELINE_OUTBOUND})
"""

TIMELINE_DUCKDB = f"""
create or replace table step_timeline_duckdb as
select message_id, last_inbound_at, next_inbound_at from (
    select
        *,
        max(event_at) filter (where is_inbound) over through_instant as last_inbound_at,
        min(event_at) filter (where is_inbound) over after_instant as next_inbound_at
    from ({TIMELINE_EVENTS})
    window
        thread_time as (partition by phone_number_id, contact_key order by event_at),
        through_instant as (thread_time range between unbounded preceding and current row),
        after_instant as (thread_time range between current row and unbounded following exclude group)
)
where not is_inbound
"""


def window_step_in_build(warehouse: Path, out_dir: Path) -> dict[str, float]:
    """The delivery-time window (int_bill_timeline's until 2026-12-07) inside a build, two
    ways, on a copy of the warehouse: DuckDB's window into a table, as the model did, and Polars' join_asof (backward for
    the last inbound, forward for the next) with what using it in the build would add:
    its inputs out of DuckDB into Arrow and its result back into a table. Seconds each
    (Polars' also split into out, join, back); the two must find the same instants."""
    import polars as pl

    out_dir.mkdir(parents=True, exist_ok=True)
    copy = out_dir / "window_step.duckdb"
    shutil.copyfile(warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute("set TimeZone = 'UTC'")
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        con.execute(TIMELINE_DUCKDB)
        seconds["duckdb window into a table (convo)"] = round(time.perf_counter() - started, 2)

        thread = ["phone_number_id", "contact_key"]
        started = time.perf_counter()
        inbound = pl.from_arrow(con.sql(TIMELINE_INBOUND).to_arrow_table()).rename({"sent_at": "inbound_at"})
        outbound = pl.from_arrow(con.sql(TIMELINE_OUTBOUND).to_arrow_table())
        taken = time.perf_counter()
        inbound = inbound.sort("inbound_at")
        joined = (outbound.sort("event_at")
                  .join_asof(inbound.with_columns(last_inbound_at=pl.col("inbound_at")), left_on="event_at",
                             right_on="inbound_at", by=thread, strategy="backward", check_sortedness=False)
                  .drop("inbound_at")
                  .join_asof(inbound.with_columns(next_inbound_at=pl.col("inbound_at")), left_on="event_at",
                             right_on="inbound_at", by=thread, strategy="forward", allow_exact_matches=False,
                             check_sortedness=False)
                  .select("message_id", "last_inbound_at", "next_inbound_at")
                  .to_arrow())
        computed = time.perf_counter()
        con.register("step_timeline_arrow", joined)
        con.execute("create or replace table step_timeline_polars as select * from step_timeline_arrow")
        con.unregister("step_timeline_arrow")
        done = time.perf_counter()
        seconds["polars join_asof, in and out of the warehouse"] = round(done - started, 2)
        seconds["  of which: out of DuckDB into Polars"] = round(taken - started, 2)
        seconds["  of which: two join_asof"] = round(computed - taken, 2)
        seconds["  of which: back into a table"] = round(done - computed, 2)
        differing = con.execute("""
            select count(*) from (
                (select * from step_timeline_duckdb except all select * from step_timeline_polars)
                union all
                (select * from step_timeline_polars except all select * from step_timeline_duckdb))
            """).fetchall()[0][0]
    finally:
        con.close()
        paths.remove_duckdb(copy)
    if differing:
        raise EnginesDisagree(f"the delivery-time window differs in {differing} rows between DuckDB and Polars")
    return seconds


# ---------------------------------------------------------------- running

def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _normalized(answer: list[dict[str, object]]) -> list[dict[str, object]]:
    keep = ("market", "category", "charged", "free", "cost_micros")
    return sorted(({key: (int(row[key]) if key not in ("market", "category") else row[key]) for key in keep}
                   for row in answer), key=lambda row: (row["market"], row["category"]))


def run_engine(engine: str, lake: Path, warehouse: Path, config: Path, out_dir: Path) -> dict[str, object]:
    """One engine in this process: its answer and its costs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lookup = out_dir / LOOKUP
    if engine != "convo" and not lookup.is_file():
        build_lookup(warehouse, lookup)
    extra: dict[str, object] = {}
    if engine == "convo":
        answer, models, wall, cpu = convo_answer(lake, warehouse, config, out_dir)
        extra = {"models": models, "tiered_cost_micros": sum(int(row["tiered_cost_micros"]) for row in answer)}
    else:
        run: Callable[[Path, Reference], list[dict[str, object]]] = (
            pandas_answer if engine == "pandas" else polars_answer)
        if engine == "polars":
            extra["steps"] = {}
            run = partial(polars_answer, steps=extra["steps"])
        wall, cpu = time.perf_counter(), _cpu()
        answer = run(lake, reference(config, lookup))
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    groups = _normalized(answer)
    return {
        "engine": engine,
        "messages": lake_messages(lake),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "charged": sum(row["charged"] for row in groups),
        "free": sum(row["free"] for row in groups),
        "cost_micros": sum(row["cost_micros"] for row in groups),
        "groups": groups,
        **extra,
    }


class EnginesDisagree(RuntimeError):
    """Two engines computed different answers on the same lake."""


def check_agreement(results: list[dict[str, object]]) -> None:
    reference_result = results[0]
    for other in results[1:]:
        if other["groups"] != reference_result["groups"]:
            mine = {(row["market"], row["category"]): row for row in reference_result["groups"]}
            theirs = {(row["market"], row["category"]): row for row in other["groups"]}
            differences = [f"{key}: {reference_result['engine']} {mine.get(key)} vs {other['engine']} {theirs.get(key)}"
                           for key in sorted(set(mine) | set(theirs), key=str) if mine.get(key) != theirs.get(key)]
            raise EnginesDisagree(f"{reference_result['engine']} and {other['engine']} disagree on "
                                  f"{len(differences)} (market, category): " + "; ".join(differences))


def run_all(lake: Path, warehouse: Path, config: Path, out_dir: Path) -> list[dict[str, object]]:
    """The three engines, each in a child process; raises EnginesDisagree unless their answers are equal."""
    lake, warehouse, config, out_dir = Path(lake), Path(warehouse), Path(config), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    build_lookup(warehouse, out_dir / LOOKUP)
    results = []
    for engine in ENGINES:
        target = out_dir / f"{engine}.json"
        subprocess.run([sys.executable, __file__, "--engine", engine, "--lake", str(lake), "--warehouse",
                        str(warehouse), "--config", str(config), "--out-dir", str(out_dir), "--json", str(target)],
                       check=True)
        results.append(json.loads(target.read_text(encoding="utf-8")))
    check_agreement(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--all", action="store_true", help="run the three engines and check they agree")
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results" / "baselines")
    parser.add_argument("--json", type=Path, help="with --engine: write the result here")
    parser.add_argument("--steps", action="store_true",
                        help="Polars, each step collected on its own, and the window step four ways: print seconds")
    args = parser.parse_args()
    if args.all == bool(args.engine or args.steps):
        parser.error("give either --all, --engine or --steps")
    if args.steps:
        lookup = args.out_dir / LOOKUP
        if not lookup.is_file():
            build_lookup(args.warehouse, lookup)
        steps: dict[str, float] = {}
        polars_answer(args.lake, reference(args.config, lookup), steps)
        print(json.dumps({"engine": "polars", "steps": steps}))
        print(json.dumps({"step": "last inbound at or before each delivery", "seconds": window_step(args.warehouse)}))
        print(json.dumps({"step": "int_bill_timeline's window inside a build",
                          "seconds": window_step_in_build(args.warehouse, args.out_dir)}))
        return
    if args.engine:
        result = run_engine(args.engine, args.lake, args.warehouse, args.config, args.out_dir)
        text = json.dumps(result)
        if args.json:
            args.json.write_text(text, encoding="utf-8")
        else:
            print(text)
        return
    for result in run_all(args.lake, args.warehouse, args.config, args.out_dir):
        print(json.dumps({key: result[key] for key in SUMMARY_KEYS}))
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: the three engines agree", file=sys.stderr)


if __name__ == "__main__":
    main()
