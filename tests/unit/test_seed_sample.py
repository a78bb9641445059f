"""The vendor's sample response parses into exactly its 9 events."""

from __future__ import annotations

import re

import orjson
import pytest

from pipelines.source.models import ServiceEvent
from pipelines.source.validation import validate_event
from tests import REPO

SEED = REPO.parent / "shared" / "seed"
SERVICE_ID = "35de3ca9-1bca-4ae7-9cb0-914f30fa7d3e"


def _sample_body() -> dict[str, object]:
    text = (SEED / "modelarts-service-events-api.txt").read_text(encoding="utf-8")
    match = re.search(r"Event logs of a service\s*(\{.*\})\s*Status Codes", text, re.S)
    assert match, "sample response not found in the vendor page"
    body = orjson.loads(match.group(1))
    assert isinstance(body, dict)
    return body


@pytest.mark.skipif(not SEED.is_dir(), reason="../shared/seed is not beside this checkout")
def test_vendor_sample_parses_into_its_nine_events() -> None:
    body = _sample_body()
    events = [validate_event(str(body["service_id"]), raw) for raw in body["events"]]  # type: ignore[attr-defined]
    assert all(isinstance(e, ServiceEvent) for e in events)
    assert body["count"] == body["total_count"] == 9
    assert len(events) == 9
    assert len({(e.service_id, e.occur_time, e.event_info) for e in events}) == 9  # type: ignore[union-attr]
    first, last = events[0], events[-1]
    assert first == ServiceEvent(SERVICE_ID, 1562597251764, "normal", "start to deploy service")
    assert last == ServiceEvent(SERVICE_ID, 1562597332582, "normal", "[TF 3.0.0] starting model")
