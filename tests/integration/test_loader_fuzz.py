"""Fuzz the loader: any batch of events lands exactly once per key, loaded once or twice."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from pipelines.source.models import ServiceEvent
from pipelines.source.validation import repair_text
from pipelines.warehouse.loader import WindowLoad
from pipelines.windows import TimeWindow
from tests.integration.conftest import add_events

pytestmark = pytest.mark.integration

T0 = 1_764_288_000_000
WINDOW = TimeWindow(T0, T0 + 86_400_000)

events = st.lists(
    st.builds(
        lambda s, t, k, info: ServiceEvent(s, T0 + t, k, repair_text(info)[0]),
        st.sampled_from(["svc-a", "svc/b", "服务 c"]),
        st.integers(min_value=0, max_value=5),  # few times: many same-millisecond events
        st.sampled_from(["normal", "abnormal", "warning"]),
        # short texts, and texts past the ~2.7 KB a btree on raw text holds (built by repeating
        # a short one: 40 random 3 KB texts exceed what hypothesis draws without complaint)
        st.one_of(
            st.text(max_size=40),
            st.text(min_size=1, max_size=12).map(lambda head: (head * 3000)[:2800]),
        ),
    ),
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=events, twice=st.booleans())
def test_any_batch_lands_once_per_key(
    engine: Engine, batch: list[ServiceEvent], twice: bool
) -> None:
    with engine.begin() as conn:
        conn.execute(text("truncate service_events"))
    for _ in range(2 if twice else 1):
        with WindowLoad(engine, WINDOW) as load:
            add_events(load, batch)
            load.commit()
    with engine.connect() as conn:
        rows = conn.execute(
            text("select service_id, occur_time, event_info from service_events")
        ).all()
    stored = [(r[0], r[1], r[2]) for r in rows]
    assert len(stored) == len(set(stored))
    assert set(stored) == {(e.service_id, e.occur_time, e.event_info) for e in batch}
