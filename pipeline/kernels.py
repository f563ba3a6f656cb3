"""Per-thread kernels: a model's passes over its one sorted order, in compiled code.

A per-thread model whose file declares ``kernel=<name>`` (``-- config: kind=per-thread,
kernel=thread_pass``) is run by the function of that name here instead of being created
from its select: DuckDB runs the model's select, which gives the rows in thread order
(DuckDB sorts; ``order by`` is the select's last clause), the kernel walks them once,
thread by thread, forward and back (numba), and the rows with the kernel's values go back
into DuckDB as the model's relation. What the model reads stays in its SQL file, so the
build, shards, Spark tasks and incremental nights run it like any other model (DESIGN
"Sort once").

Why: DuckDB computes a value of the thread's previous or next row of a kind (``lag`` /
``lead ... ignore nulls``) or a running count in a window pass, and each pass sorts
every thread again; values that depend on such values need a second pass, a second
sort. A kernel sorts once and does both passes in O(n), ~0.1 CPU-us a row
(bench/README, Build profile, ninth session). It pays where it replaces sorts, windows
and recursion (thread_pass; cbp_pass, the CBP chaining); in place of DuckDB's parallel
group-bys and hash joins it does not: the rows' trip through Arrow costs what those
cost (measured, bench/README, tenth session).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# A value that is none (null), inside the kernels: timestamps are microseconds since 1970.
NONE = np.iinfo(np.int64).min

# Bits of int_thread_messages' `flags` (its SQL file packs them).
MESSAGE, INBOUND, OUTBOUND, TEMPLATE, OPENER, CLOSE, DELIVERED = 1, 2, 4, 8, 16, 32, 64
# message_role, by the kernel's code for it (sql/intermediate/int_thread_messages.sql).
ROLES = ("inbound", "template", "automated_reply", "human_reply")
HUMAN_REPLY = 3


def run(con: duckdb.DuckDBPyConnection, name: str, kernel: str, body: str, create: str) -> None:
    """Create relation `name` (`create`: 'table' or 'temp table') by kernel from the model's select."""
    KERNELS[kernel](con, name, body, create)


# Compiled on first use and cached in __pycache__ (~1 s once per machine); this module is
# imported only when a kernel model runs (pipeline/stage.py), so numba's own start-up
# (~0.4 s) is paid by builds only.
@numba.njit(cache=True, nogil=True)
def _thread_pass(new_thread, sent, delivered, flags, reason, window_us, timeout_us, automated_us):
    n = len(sent)
    position = np.zeros(n, np.int64)
    next_message = np.full(n, NONE)
    previous_inbound = np.full(n, NONE)
    next_inbound = np.full(n, NONE)
    reordered = np.full(n, NONE)
    next_close = np.full(n, NONE)
    next_reason = np.full(n, -1, np.int32)
    window_start = np.zeros(n, np.bool_)
    segment_start = np.zeros(n, np.bool_)
    segment_end = np.zeros(n, np.bool_)
    role = np.zeros(n, np.int8)
    window_number = np.zeros(n, np.int64)
    run_number = np.zeros(n, np.int64)
    in_conversation = np.zeros(n, np.bool_)
    answered_by = np.full(n, -1, np.int64)
    answered_at = np.full(n, NONE)
    first = 0
    while first < n:
        end = first + 1
        while end < n and not new_thread[end]:
            end += 1
        # Back over the thread: the next message, inbound message and close after each row.
        later_message = NONE
        later_inbound = NONE
        later_close = NONE
        later_reason = -1
        for i in range(end - 1, first - 1, -1):
            next_message[i] = later_message
            next_inbound[i] = later_inbound
            next_close[i] = later_close
            next_reason[i] = later_reason
            if flags[i] & MESSAGE:
                later_message = sent[i]
            if flags[i] & INBOUND:
                later_inbound = sent[i]
            if flags[i] & CLOSE:
                later_close = sent[i]
                later_reason = reason[i]
        # Forward: the previous message, inbound message, opener and close; each
        # message's flags (pass 1 of the SQL it replaces) and running counts (pass 2).
        last_message = NONE
        last_inbound = NONE
        last_opener = NONE
        last_close = NONE
        count = 0
        windows = 0
        runs = 0
        run_start = NONE
        last_candidate = NONE
        for i in range(first, end):
            f = flags[i]
            if f & CLOSE:
                last_close = sent[i]
            if not f & MESSAGE:
                continue
            t = sent[i]
            count += 1
            position[i] = count
            previous_inbound[i] = last_inbound
            if f & OUTBOUND and f & DELIVERED and (
                    (last_inbound != NONE and last_inbound > delivered[i])
                    or (next_inbound[i] != NONE and next_inbound[i] <= delivered[i])):
                reordered[i] = delivered[i]
            close_first = next_close[i] != NONE and (next_message[i] == NONE or next_close[i] < next_message[i])
            if not close_first:
                next_close[i] = NONE
                next_reason[i] = -1
            closed_since_inbound = last_close != NONE and last_inbound != NONE and last_close >= last_inbound
            # DOMAIN R4: a gap of exactly the window continues it
            is_window_start = f & INBOUND != 0 and (last_inbound == NONE or t - last_inbound > window_us)
            # DOMAIN R8: exactly the timeout of silence, or a close, ends a run
            is_segment_start = (last_message == NONE or t - last_message >= timeout_us
                                or (last_close != NONE and last_close >= last_message))
            segment_end[i] = next_message[i] == NONE or next_message[i] - t >= timeout_us or close_first
            # DOMAIN R7: the first opener of a run opens its conversation
            is_candidate = f & OPENER != 0 and (last_opener == NONE or t - last_opener >= timeout_us
                                                or (last_close != NONE and last_close >= last_opener))
            if f & INBOUND:
                role[i] = 0
            elif f & TEMPLATE:
                role[i] = 1
            elif (automated_us != NONE and last_inbound != NONE and t - last_inbound < automated_us
                  and not closed_since_inbound):
                role[i] = 2
            else:
                role[i] = HUMAN_REPLY
            window_start[i] = is_window_start
            segment_start[i] = is_segment_start
            if is_window_start:
                windows += 1
            if is_segment_start:
                runs += 1
                run_start = count
            if is_candidate:
                last_candidate = count
            window_number[i] = windows
            run_number[i] = runs
            in_conversation[i] = last_candidate != NONE and last_candidate >= run_start
            last_message = t
            if f & INBOUND:
                last_inbound = t
            if f & OPENER:
                last_opener = t
        # Back over the messages: an inbound message is answered by the thread's next
        # human reply when no run starts before it.
        reply = -1
        reply_position = NONE
        next_run_start = NONE
        for i in range(end - 1, first - 1, -1):
            f = flags[i]
            if not f & MESSAGE:
                continue
            if f & INBOUND and reply_position != NONE and (next_run_start == NONE or reply_position < next_run_start):
                answered_by[i] = reply
                answered_at[i] = sent[reply]
            if role[i] == HUMAN_REPLY:
                reply = i
                reply_position = position[i]
            if segment_start[i]:
                next_run_start = position[i]
        first = end
    return (position, next_message, previous_inbound, next_inbound, reordered, next_close, next_reason,
            window_start, window_number, run_number, segment_end, in_conversation, role, answered_by,
            answered_at)


def _differs(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Per row but the first, whether it differs from the row before (two nulls do not)."""
    after, before = column[1:], column[:-1]
    both_null = pc.and_(pc.is_null(after), pc.is_null(before))
    return pc.if_else(both_null, False, pc.fill_null(pc.not_equal(after, before), True))


def _timestamps(values: np.ndarray) -> pa.Array:
    """A kernel's microseconds as timestamptz, NONE as null."""
    return pa.array(values, type=pa.int64(), mask=values == NONE).cast(pa.timestamp("us", tz="UTC"))


def thread_pass(con: duckdb.DuckDBPyConnection, name: str, body: str, create: str) -> None:
    """int_thread_messages: its select gives the timeline in thread order (with the
    columns passed through, `flags`, `sent_us`, `delivered_us`, `close_reason`); the
    kernel computes both passes; messages' rows (not closes') become the relation."""
    limits = con.execute("""
        select
            epoch_us(to_hours(getvariable('customer_service_window_hours'))),
            epoch_us(to_hours(getvariable('platform_conversation_timeout_hours'))),
            getvariable('automated_reply_max_seconds') * 1000000
    """).fetchall()[0]
    # No automated_reply_max_seconds in the policy: no message is an automated reply (as
    # SQL's comparison with null says).
    limits = (*limits[:2], NONE if limits[2] is None else limits[2])
    rows, order, new_thread = _in_thread_order(con.sql(body).to_arrow_table(), ("sent_us", "tie_rank"))
    reasons = pc.dictionary_encode(rows.column("close_reason")).combine_chunks()
    reason = _ordered(pc.fill_null(reasons.indices, -1).to_numpy().astype(np.int32), order)
    sent = _ordered(rows.column("sent_us").to_numpy(), order)
    delivered = _ordered(rows.column("delivered_us").to_numpy(), order)
    flags = _ordered(rows.column("flags").to_numpy(), order)
    roles = " ".join(f"when {code} then '{label}'" for code, label in enumerate(ROLES))
    select = (f"select * exclude (is_message, role, answered_by_message_id, answered_at), "
              f"case role {roles} end as message_role, answered_by_message_id, answered_at "
              "from {view} where is_message")

    def part(first: int, end: int) -> pa.Table:
        (position, next_message, previous_inbound, next_inbound, reordered, next_close, next_reason,
         window_start, window_number, run_number, segment_end, in_conversation, role, answered_by,
         answered_at) = _thread_pass(new_thread[first:end], sent[first:end], delivered[first:end],
                                     flags[first:end], reason[first:end], *limits)
        own = _part_rows(rows, order, first, end)
        part_flags = flags[first:end]
        return pa.table({
            "tenant_id": own.column("tenant_id"),
            "phone_number_id": own.column("phone_number_id"),
            "contact_key": own.column("contact_key"),
            "thread_position": position,
            "message_id": own.column("message_id"),
            "sent_at": own.column("sent_at"),
            "is_inbound": part_flags & INBOUND != 0,
            "platform_conversation_id": own.column("platform_conversation_id"),
            "next_message_at": _timestamps(next_message),
            "previous_inbound_at": _timestamps(previous_inbound),
            "next_inbound_at": _timestamps(next_inbound),
            "reordered_delivery_at": _timestamps(reordered),
            "next_close_at": _timestamps(next_close),
            "next_close_reason": reasons.dictionary.take(pa.array(next_reason, mask=next_reason < 0)),
            "is_window_start": window_start,
            "window_number": window_number,
            "run_number": run_number,
            "is_segment_end": segment_end,
            "is_in_conversation": in_conversation,
            "role": role,
            "answered_by_message_id": own.column("message_id").take(pa.array(answered_by, mask=answered_by < 0)),
            "answered_at": _timestamps(answered_at),
            "is_message": part_flags & MESSAGE != 0,
        })

    _write(con, name, create, select, _parts(new_thread, PART_ROWS), part)


@numba.njit(cache=True, nogil=True)
def _cbp_pass(new_thread, is_template, chain, event, length, chains, window, billed):
    """The CBP chaining of int_bill_cbp_conversations (DOMAIN R13, R14) over its candidates
    in thread order (delivery, then message_id). Template chains are codes 0..chains-1,
    the service chain of non-template messages is `chains`; a row whose `window` (its
    entry point window's opening, microseconds) is not NONE is in that window's
    conversation (R15) and takes no part in the chaining. Per row: the row of its
    conversation's opening message (-1 in a window), the chain code of that conversation
    (chains + 1 in a window), whether it is chained (the SQL file says what that means),
    how many rows its conversation (or window) holds and how many of them are `billed`."""
    n = len(event)
    opener = np.full(n, -1, np.int64)
    category = np.full(n, chains + 1, np.int32)
    member = np.full(n, -1, np.int32)         # the chain it is a member of; -1: absorbed
    chained = np.zeros(n, np.bool_)
    group = np.empty(n, np.int64)
    size = np.zeros(n, np.int64)
    billed_size = np.zeros(n, np.int64)
    messages = np.empty(n, np.int64)
    billed_messages = np.empty(n, np.int64)
    open_row = np.full(chains + 1, -1, np.int64)
    open_end = np.zeros(chains + 1, np.int64)
    times = np.empty(n, np.int64)
    first = 0
    while first < n:
        end = first + 1
        while end < n and not new_thread[end]:
            end += 1
        open_row[:] = -1
        # A conversation of a chain is open at t when its opening (the chain's latest,
        # since a chain's conversations never overlap) came at or before t and t is
        # before its end; of two, the earlier opened, then the smaller message_id (at one
        # instant the rows are in message_id order), comes first.
        start = first
        while start < end:
            stop = start + 1
            while stop < end and event[stop] == event[start]:
                stop += 1
            t = event[start]
            # the instant's templates first: a template opens its chain's conversation
            # unless one is open (R13)
            for i in range(start, stop):
                if is_template[i] and window[i] == NONE:
                    c = chain[i]
                    if open_row[c] == -1 or t >= open_end[c]:
                        open_row[c] = i
                        open_end[c] = t + length[i]
                    opener[i] = open_row[c]
                    category[i] = c
                    member[i] = c
            # then its other messages (R14)
            for i in range(start, stop):
                if is_template[i] or window[i] != NONE:
                    continue
                best = -1
                best_chain = -1
                for c in range(chains):
                    r = open_row[c]
                    if r != -1 and t < open_end[c] and (
                            best == -1 or event[r] < event[best] or (event[r] == event[best] and r < best)):
                        best = r
                        best_chain = c
                r = open_row[chains]
                service_open = r != -1 and t < open_end[chains]
                if best == -1:
                    # no template conversation covers it: the service chain
                    if not service_open:
                        open_row[chains] = i
                        open_end[chains] = t + length[i]
                    opener[i] = open_row[chains]
                    category[i] = chains
                    member[i] = chains
                else:
                    # covered: absorbed by the first opened of the open conversations
                    if service_open and (event[r] < event[best] or (event[r] == event[best] and r < best)):
                        best = r
                        best_chain = chains
                    opener[i] = best
                    category[i] = best_chain
            start = stop
        # is_chained: a member of its chain at or before t - length, and the chain's first
        # member after t - length less than a length after that one
        for c in range(chains + 1):
            k = 0
            for i in range(first, end):
                if member[i] != c:
                    continue
                times[k] = event[i]
                k += 1
                after = np.searchsorted(times[:k], event[i] - length[i], side="right")
                chained[i] = after > 0 and times[after] < times[after - 1] + length[i]
        # the conversation's (or window's) first row counts its rows: a window's rows
        # follow each other in the thread's order (windows do not overlap)
        for i in range(first, end):
            if window[i] == NONE:
                group[i] = opener[i]
            elif i > first and window[i - 1] == window[i]:
                group[i] = group[i - 1]
            else:
                group[i] = i
            size[group[i]] += 1
            billed_size[group[i]] += billed[i]
        first = end
    for i in range(n):
        messages[i] = size[group[i]]
        billed_messages[i] = billed_size[group[i]]
    return opener, category, chained, messages, billed_messages


def cbp_pass(con: duckdb.DuckDBPyConnection, name: str, body: str, create: str) -> None:
    """int_bill_cbp_conversations: its select gives the candidates in thread order (with
    `chain`, `event_us`, `length_us`, `is_billed` and the entry point window's opening);
    the kernel chains them and counts each conversation's messages."""
    rows, order, new_thread = _in_thread_order(con.sql(body).to_arrow_table(), ("event_us",))
    chains = pc.dictionary_encode(rows.column("chain")).combine_chunks()
    # the conversation's category: a template chain's own name, else service; in an
    # entry point window, its free entry point conversation (R15, R27)
    categories = pa.concat_arrays([chains.dictionary.cast(pa.string()),
                                   pa.array(["service", "referral_conversion"])])
    codes = _ordered(chains.indices.to_numpy().astype(np.int32), order)
    is_template = _ordered(rows.column("is_template").to_numpy(), order)
    event = _ordered(rows.column("event_us").to_numpy(), order)
    # a window's rows need no length (they are not chained; the calendar may not reach them)
    length = _ordered(rows.column("length_us").fill_null(0).to_numpy(), order)
    billed = _ordered(rows.column("is_billed").to_numpy(), order)
    in_window = rows.column("entry_point_message_id").is_valid()
    window = _ordered(pc.if_else(in_window, pc.cast(rows.column("entry_point_opened_at"), pa.int64()),
                                 NONE).to_numpy(), order)
    service = len(chains.dictionary)

    def part(first: int, end: int) -> pa.Table:
        opener, category, chained, messages, billed_messages = _cbp_pass(
            new_thread[first:end], is_template[first:end], codes[first:end], event[first:end], length[first:end],
            service, window[first:end], billed[first:end])
        own = _part_rows(rows, order, first, end)
        opening = pa.array(opener, mask=opener < 0)
        window_own = own.column("entry_point_message_id").is_valid()
        return pa.table({
            "message_id": own.column("message_id"),
            "conversation_id": pc.if_else(window_own, own.column("entry_point_message_id"),
                                          own.column("message_id").take(opening)),
            "conversation_started_at": pc.if_else(window_own, own.column("entry_point_opened_at"),
                                                  own.column("event_at").take(opening)),
            "conversation_category": categories.take(category),
            "is_chained": chained,
            "is_in_entry_point_window": window_own,
            "conversation_messages": messages,
            "conversation_billed_messages": billed_messages,
        })

    _write(con, name, create, "select * from {view}", _parts(new_thread, PART_ROWS), part)


def _in_thread_order(rows: pa.Table, keys: tuple[str, ...]) -> tuple[pa.Table, np.ndarray | None, np.ndarray]:
    """A kernel's rows, which DuckDB sorted by (phone_number_id, thread_hash, *keys) (the
    contact key's hash and integers: a sort of integers, not of the key's text, which costs
    ~2 CPU-s less per 5M rows), and the order that puts them in thread order: by
    phone_number_id, contact_key, *keys, then message_id (nulls last). Only rows of one
    thread that tie on every key move (there are few), so the order is given as row
    numbers (None: the rows are in order) for the kernel's arrays and each part's rows
    (_ordered, _part_rows), and the rows are not copied. Should two contact keys of a
    number share a hash (their rows then interleave), every row is sorted by the keys
    themselves. Also where each thread starts (_new_threads; a tie never moves a start)."""
    new_thread = _new_threads(rows)
    if rows.num_rows < 2:
        return rows, None, new_thread
    new_hash = np.ones(rows.num_rows, np.bool_)
    new_hash[1:] = pc.or_(_differs(rows.column("phone_number_id")), _differs(rows.column("thread_hash"))).to_numpy()
    if np.any(new_thread & ~new_hash):
        rows = rows.take(pc.sort_indices(rows, [(key, "ascending") for key in
                                                ("phone_number_id", "contact_key", *keys, "message_id")]))
        return rows, None, _new_threads(rows)
    # a tie starts where the thread or any key changes
    starts = new_thread.copy()
    for key in keys:
        values = rows.column(key).to_numpy()
        starts[1:] |= values[1:] != values[:-1]
    group = np.cumsum(starts)
    tied = np.flatnonzero(np.bincount(group)[group] > 1)
    if len(tied) == 0:
        return rows, None, new_thread
    ties = pa.table({"group": group[tied], "message_id": rows.column("message_id").take(tied)})
    order = pc.sort_indices(ties, [("group", "ascending"), ("message_id", "ascending")]).to_numpy()
    if np.array_equal(order, np.arange(len(tied))):
        return rows, None, new_thread
    permutation = np.arange(rows.num_rows)
    permutation[tied] = tied[order]
    return rows, permutation, new_thread


def _ordered(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """A column's values in thread order (_in_thread_order)."""
    return values if order is None else values[order]


def _part_rows(rows: pa.Table, order: np.ndarray | None, first: int, end: int) -> pa.Table:
    """Rows [first, end) of the thread order (whole threads: a tie never crosses a part)."""
    own = rows.slice(first, end - first)
    if order is None:
        return own
    local = order[first:end] - first
    return own if np.array_equal(local, np.arange(end - first)) else own.take(local)


def _new_threads(rows: pa.Table) -> np.ndarray:
    """Per row of rows in thread order, whether a thread starts there: where
    (phone_number_id, contact_key) changes, compared, not hashed."""
    new_thread = np.ones(len(rows), np.bool_)
    if len(rows) > 1:
        new_thread[1:] = pc.or_(_differs(rows.column("phone_number_id")),
                                _differs(rows.column("contact_key"))).to_numpy()
    return new_thread


def _write(con: duckdb.DuckDBPyConnection, name: str, create: str, select: str,
           parts: list[tuple[int, int]], part: Callable[[int, int], pa.Table]) -> None:
    """Relation `name` from `select` ('... from {view} ...') over each part's table, in order.

    The rows go to DuckDB a part at a time, each part whole threads, so that the kernel's
    arrays of one part only are held beside the sorted rows (at 100M messages in 13
    shards the process's peak is near the 8 GB target)."""
    view = f"{name}__kernel"
    for number, (first, end) in enumerate(parts):
        con.register(view, part(first, end))
        try:
            query = select.replace("{view}", f'"{view}"')
            con.execute(f'create or replace {create} "{name}" as {query}' if number == 0
                        else f'insert into "{name}" {query}')
        finally:
            con.unregister(view)


# Rows of the sorted timeline per part handed to DuckDB (whole threads; ~90 MB of the
# kernel's arrays a part).
PART_ROWS = 1 << 20


def _parts(new_thread: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """[first, end) row ranges of about `rows` rows each, cut where a thread starts
    (one empty range when there are no rows: the relation is still made)."""
    starts = np.flatnonzero(new_thread)
    cuts = [0]
    for target in range(rows, len(new_thread), rows):
        at = int(starts[min(np.searchsorted(starts, target), len(starts) - 1)])
        if at > cuts[-1]:
            cuts.append(at)
    cuts.append(len(new_thread))
    return list(zip(cuts[:-1], cuts[1:])) or [(0, 0)]


KERNELS: dict[str, Callable[[duckdb.DuckDBPyConnection, str, str, str], None]] = {
    "thread_pass": thread_pass, "cbp_pass": cbp_pass}
