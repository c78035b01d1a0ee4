"""Schemathesis hooks for Draftr's API fuzzing (loaded through SCHEMATHESIS_HOOKS by fuzz.py).

- `draftr_no_server_error`, the check that decides the run: an HTTP 5xx, or a GraphQL error
  whose `extensions.code` says the server failed (`INTERNAL_SERVER_ERROR`, or the router's codes
  for a subgraph that failed to answer). Every other error code (`BAD_USER_INPUT`,
  `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, …) is a correct refusal of fuzzed input.
  Schemathesis's own `not_a_server_error` is not used for GraphQL: it counts every error that
  has a `path` as a server error, which would fail on every `FORBIDDEN`.
- Values for Draftr's scalars: `ID` mixes ids that exist (listed by fuzz.py in
  DRAFTR_FUZZ_IDS) with random UUIDs and junk, so resolvers get past "not found"; `Date` mixes
  dates in the next weeks, any date and junk; `_Any` (the subgraphs' `_entities` representations)
  makes entity references, well-formed or not. A stay whose check-out is drawn equal to its
  check-in gets a few nights (`map_case`), so quotes and bookings get past "check-out must be
  after check-in".

Each failure is also appended as one JSON line to DRAFTR_FUZZ_FAILURES (request, response,
the request id that finds the server's log lines), for fuzz.py's summary.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import threading
import zlib

import graphql
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

# Codes meaning the server, not the request, is at fault. The router's SUBREQUEST_* codes are
# what a client sees when a subgraph answered with a 5xx or with something that is not GraphQL.
SERVER_ERROR_CODES = frozenset(
    {
        "INTERNAL_SERVER_ERROR",
        "SUBREQUEST_HTTP_ERROR",
        "SUBREQUEST_MALFORMED_RESPONSE",
        "SUBREQUEST_UNEXPECTED_PATCH",
        "FETCH_ERROR",
    }
)

_TARGET = os.environ.get("DRAFTR_FUZZ_TARGET", "?")
_FAILURES = os.environ.get("DRAFTR_FUZZ_FAILURES")
_LOCK = threading.Lock()


def _record(case, response, reason: str) -> None:
    if not _FAILURES:
        return
    request = response.request
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    entry = {
        "target": _TARGET,
        "operation": case.operation.label,
        "reason": reason,
        "status": response.status_code,
        "request_id": (response.headers.get("x-request-id") or [None])[0],
        "authorized": "authorization" in {k.lower() for k in request.headers},
        "request": body,
        "response": response.content.decode("utf-8", "replace")[:4000],
    }
    with _LOCK, open(_FAILURES, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


@schemathesis.check
def draftr_no_server_error(ctx, response, case):
    """An HTTP 5xx, or a GraphQL error coded INTERNAL_SERVER_ERROR (or a router SUBREQUEST_* code)."""
    if response.status_code >= 500:
        reason = f"HTTP {response.status_code}"
        _record(case, response, reason)
        raise AssertionError(f"{reason}: {response.content[:500]!r}")
    try:
        payload = response.json()
    except ValueError:
        return
    if not isinstance(payload, dict):
        return
    for error in payload.get("errors") or []:
        if not isinstance(error, dict):
            continue
        extensions = error.get("extensions")
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if code in SERVER_ERROR_CODES:
            reason = f"{code}: {error.get('message')}"
            _record(case, response, reason)
            raise AssertionError(reason)


# --- values for Draftr's scalars -------------------------------------------------------------

_KNOWN_IDS = [i for i in json.loads(os.environ.get("DRAFTR_FUZZ_IDS", "[]")) if isinstance(i, str)]

_junk = st.text(max_size=40)
# Mostly ids that exist (a quote or a booking needs a real listing), else a random UUID or junk.
_ids = st.one_of(
    *([st.sampled_from(_KNOWN_IDS)] * 7 if _KNOWN_IDS else []),
    st.uuids().map(str),
    _junk,
)
schemathesis.graphql.scalar(
    "ID",
    st.one_of(
        *[_ids.map(nodes.String)] * 9,
        st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
    ),
)

_today = datetime.date.today()
# Mostly the next few weeks, so that a check-in and a check-out drawn apart are often a stay
# Draftr accepts (1-30 nights, in the future); sometimes anything.
# (sampled, not `st.dates`, which favours its lower bound and so check-in == check-out)
_soon = st.sampled_from([_today + datetime.timedelta(days=n) for n in range(1, 22)])
_bookable = st.dates(min_value=_today - datetime.timedelta(days=5), max_value=_today + datetime.timedelta(days=800))
schemathesis.graphql.scalar(
    "Date",
    st.one_of(
        *[_soon.map(str)] * 6,
        _bookable.map(str),
        st.dates().map(str),
        _junk,
        st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(st.datetimes(timezones=st.just(datetime.timezone.utc)).map(lambda d: d.isoformat()), _junk).map(
        nodes.String
    ),
)


# Hypothesis likes to draw the same value twice, so most generated stays check out the day they
# check in; spread those over 1-14 nights (deterministically, so a seed repeats the run).
_STAY = re.compile(r'(checkIn: "(\d{4}-\d{2}-\d{2})"[^()]*?checkOut: ")(\d{4}-\d{2}-\d{2})(")')


def _spread(m: re.Match) -> str:
    if m.group(2) != m.group(3):
        return m.group(0)
    nights = 1 + zlib.crc32(m.group(0).encode()) % 14
    try:
        check_out = datetime.date.fromisoformat(m.group(2)) + datetime.timedelta(days=nights)
    except (ValueError, OverflowError):
        return m.group(0)
    return f"{m.group(1)}{check_out}{m.group(4)}"


@schemathesis.hook
def map_case(context, case):
    if isinstance(case.body, str) and "checkOut" in case.body:
        case.body = _STAY.sub(_spread, case.body)
    return case


def _field(name: str, value: graphql.ValueNode) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)


_typenames = st.one_of(
    st.sampled_from(["User", "Property", "Reservation", "Payment", "Category", "Notification", "Query"]),
    _junk,
)
_scalars = st.one_of(
    _ids.map(nodes.String),
    st.integers().map(nodes.Int),
    st.booleans().map(nodes.Boolean),
    st.just(nodes.Null),
)


@st.composite
def _representation(draw) -> graphql.ValueNode:
    fields = []
    if draw(st.integers(0, 9)) > 0:
        fields.append(_field("__typename", nodes.String(draw(_typenames))))
    if draw(st.integers(0, 9)) > 0:
        fields.append(_field("id", draw(_scalars)))
    for name in draw(st.lists(st.sampled_from(["email", "hostId", "guestId", "propertyId", "x"]), max_size=2, unique=True)):
        fields.append(_field(name, draw(_scalars)))
    if draw(st.integers(0, 19)) == 0:
        return draw(_scalars)
    return nodes.Object(fields)


schemathesis.graphql.scalar("_Any", _representation())
