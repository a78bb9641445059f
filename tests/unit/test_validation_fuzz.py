"""Fuzz the parser and the validator: any record is a storable event or a rejection with a
reason, never a crash."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.source.auth import Secret, StaticToken
from pipelines.source.client import HttpSettings, ModelArtsClient, parse_json
from pipelines.source.extract import _validate_page
from pipelines.source.models import RejectedEvent, ServiceEvent
from pipelines.source.validation import MAX_OCCUR_TIME_MS, MIN_OCCUR_TIME_MS, validate_event
from pipelines.warehouse.encoding import raw_record_json
from pipelines.windows import TimeWindow

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),  # any code point, NUL and lone surrogates included
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
plausible = st.fixed_dictionaries(
    {
        "event_type": st.one_of(st.sampled_from(["normal", "abnormal", "warning", ""]), values),
        "event_info": st.one_of(st.text(), values),
        "occur_time": st.one_of(
            st.integers(min_value=MIN_OCCUR_TIME_MS - 10, max_value=MAX_OCCUR_TIME_MS + 10),
            st.floats(min_value=MIN_OCCUR_TIME_MS, max_value=MAX_OCCUR_TIME_MS),
            values,
        ),
    },
    optional={"extra": values},
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(plausible, values))
def test_any_record_is_an_event_postgres_can_store_or_a_rejection_with_a_reason(
    raw: object,
) -> None:
    checked = validate_event("svc", raw)
    if isinstance(checked, RejectedEvent):
        assert checked.reason and checked.raw is raw
        assert raw_record_json(checked.raw)  # the quarantine can always serialise it
        return
    assert isinstance(checked, ServiceEvent)
    assert isinstance(checked.occur_time, int) and not isinstance(checked.occur_time, bool)
    assert MIN_OCCUR_TIME_MS <= checked.occur_time < MAX_OCCUR_TIME_MS
    assert "\x00" not in checked.event_info
    checked.event_info.encode("utf-8")  # no lone surrogate left: Postgres can store it


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_body_parses_or_raises_the_retryable_decode_error(body: bytes) -> None:
    with contextlib.suppress(orjson.JSONDecodeError):
        parse_json(body)


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'{"events":[{"event_info":"a \\ud800 b"}]}', {"events": [{"event_info": "a \ud800 b"}]}),
        (b'{"x": "\\udc00"}', {"x": "\udc00"}),
        (b"[1, 2]", [1, 2]),
        (b'"text"', "text"),
    ],
)
def test_valid_json_that_orjson_refuses_still_parses(body: bytes, parsed: object) -> None:
    assert parse_json(body) == parsed


def test_a_lone_surrogate_parsed_from_a_body_is_replaced_by_validation() -> None:
    body = b'{"occur_time": 1764288000000, "event_type": "normal", "event_info": "a \\ud800 b"}'
    raw = parse_json(body)
    assert raw["event_info"] == "a \ud800 b"  # kept by the parser: what the API sent
    checked = validate_event("svc", raw)
    # repaired: the event keeps the text with U+FFFD in place, and says so
    assert checked == ServiceEvent("svc", 1_764_288_000_000, "normal", "a \ufffd b", repaired=True)


def _reference_page(
    raws: list[object], window: TimeWindow
) -> tuple[list[ServiceEvent], list[tuple[object, str]]]:
    events: list[ServiceEvent] = []
    rejected: list[tuple[object, str]] = []
    for raw in raws:
        checked = validate_event("svc", raw)
        if isinstance(checked, RejectedEvent):
            rejected.append((checked.raw, checked.reason))
        elif window.contains(checked.occur_time):
            events.append(checked)
    return events, rejected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(plausible, values), max_size=12))
def test_the_page_fast_path_agrees_with_the_full_check(raws: list[object]) -> None:
    window = TimeWindow(MIN_OCCUR_TIME_MS, MAX_OCCUR_TIME_MS)
    client = ModelArtsClient(
        "http://127.0.0.1:9",
        "p",
        StaticToken(Secret("t")),
        None,  # type: ignore[arg-type]  # no session: the page is validated, never fetched
        HttpSettings(),
    )
    page = _validate_page("svc", raws, window, client)
    events, rejected = _reference_page(raws, window)
    assert page.events == events
    assert [e.repaired for e in page.events] == [e.repaired for e in events]
    assert [(r.raw, r.reason) for r in page.rejected] == rejected
