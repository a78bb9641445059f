"""Generate a deterministic event history of many services, with its ground truth."""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from dataclasses import dataclass
from operator import attrgetter

from pipelines.simulator import families
from pipelines.simulator import vocabulary as v
from pipelines.simulator.models import AttemptTruth, Event, History, ServiceInfo
from pipelines.simulator.scenarios import play_service
from pipelines.simulator.timeline import DAY_MS, ServiceTimeline
from pipelines.simulator.truth import truncate_attempts, truth_as_of

__all__ = [
    "AttemptTruth",
    "Event",
    "History",
    "HistoryConfig",
    "ServiceInfo",
    "generate_history",
    "truth_as_of",
]

log = logging.getLogger(__name__)

INFER_TYPES = ("real-time", "batch", "edge")


@dataclass(frozen=True)
class HistoryConfig:
    """What to generate. end_date is the exclusive end day in UTC (None: today UTC)."""

    services: int = 20
    days: int = 7
    end_date: dt.date | None = None
    seed: int = 42
    incidents_per_service_day: float = 0.5
    events_per_service_day: int | None = None
    vocabulary: str = families.REFERENCE  # reference | console | mix (families.py)
    unknown_texts_per_service_day: int = 0  # texts no rule knows (families.NOVEL_TEMPLATES)

    def window_ms(self) -> tuple[int, int]:
        end_date = self.end_date or dt.datetime.now(dt.UTC).date()
        end = dt.datetime.combine(end_date, dt.time(), tzinfo=dt.UTC)
        end_ms = int(end.timestamp()) * 1000
        return end_ms - self.days * DAY_MS, end_ms


def _service_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pad(tl: ServiceTimeline, target: int, start_ms: int, end_ms: int) -> None:
    """Add runtime events inside running periods until the service has about `target` events."""
    missing = target - len(tl.events)
    periods = [(max(p.start_ms, start_ms), min(p.end_ms, end_ms), p.models) for p in tl.running]
    periods = [p for p in periods if p[1] > p[0]]
    if not periods:
        periods = [(start_ms, end_ms, tl.models)]
    total = sum(b - a for a, b, _ in periods)
    rng, texts = tl.rng, {m: v.instance_restarted(m) for m in tl.models}
    scale_texts: dict[tuple[int, int], str] = {}
    padded: list[Event] = []
    for a, b, models in periods:
        for m in models:
            texts.setdefault(m, v.instance_restarted(m))
        count = round(missing * (b - a) / total) if missing > 0 else 0
        instances = tl.instances
        # distinct times: padding never repeats a (time, text) pair
        for t in sorted(rng.sample(range(a, b), min(count, b - a))):
            if rng.random() < 0.5:
                padded.append(Event(t, v.ABNORMAL, texts[models[rng.randrange(len(models))]]))
                continue
            after = max(1, instances + (1 if rng.random() < 0.5 else -1))
            key = (instances, after)
            text = scale_texts.get(key)
            if text is None:
                text = scale_texts[key] = v.scale_instances(instances, after)
            padded.append(Event(t, v.NORMAL, text))
            instances = after
    tl.events.extend(padded)


def _novel_texts(
    service_id: str, seed: int, per_day: int, start_ms: int, end_ms: int
) -> list[Event]:
    """`per_day` events a day with texts no rule knows, from their own random source: the
    service's other events and truth stay the same."""
    rng = random.Random(f"novel-{seed}-{service_id}")
    count = per_day * max(1, (end_ms - start_ms) // DAY_MS)
    out = []
    for t in sorted(rng.sample(range(start_ms, end_ms), count)):
        template = rng.choice(families.NOVEL_TEMPLATES)
        text = template.format(
            hex=f"{rng.getrandbits(48):012x}",
            uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
            n=rng.randint(1, 5000),
            word=rng.choice(("web", "api", "grpc", "batch")),
        )
        out.append(Event(t, v.NORMAL, text))
    return out


def _distinct(events: list[Event]) -> list[Event]:
    """Drop repeats of (occur_time, event_info): the history holds each event once."""
    out: list[Event] = []
    group: set[str] = set()
    group_time = None
    for event in events:
        if event.occur_time != group_time:
            group_time = event.occur_time
            group = set()
        if event.event_info in group:
            continue
        group.add(event.event_info)
        out.append(event)
    return out


def _status(attempts: list[AttemptTruth], events: list[Event]) -> str:
    if not attempts:
        return "stopped"
    last = attempts[-1]
    if last.outcome in ("in_progress", "superseded"):
        return "deploying"
    if last.outcome == "failed":
        return "failed"
    stopped = [e for e in events if e.event_info == v.SERVICE_STOPPED]
    if stopped and last.ended_at_ms is not None and stopped[-1].occur_time > last.ended_at_ms:
        return "stopped"
    return "running"


def generate_history(config: HistoryConfig) -> History:
    """A deterministic history: the same config gives byte-identical event lists and truth."""
    start_ms, end_ms = config.window_ms()
    master = random.Random(config.seed)
    owners = [f"{master.getrandbits(128):032x}" for _ in range(4)]
    names = master.sample(range(100_000), config.services)
    services: list[ServiceInfo] = []
    events_by_service: dict[str, list[Event]] = {}
    attempts: list[AttemptTruth] = []
    for index in range(config.services):
        rng = random.Random(config.seed * 1_000_003 + index)
        service_id = _service_id(rng)
        tl = ServiceTimeline(service_id, rng, config.incidents_per_service_day)
        tl.family = families.family_of_service(config.vocabulary, index)
        play_service(tl, index, config.services, start_ms, end_ms)
        if config.unknown_texts_per_service_day:
            tl.events.extend(
                _novel_texts(
                    service_id, config.seed, config.unknown_texts_per_service_day, start_ms, end_ms
                )
            )
        tl.events = [e for e in tl.events if start_ms <= e.occur_time < end_ms]
        if config.events_per_service_day is not None:
            _pad(tl, config.events_per_service_day * config.days, start_ms, end_ms)
        tl.events.sort(key=attrgetter("occur_time"))  # stable: ties keep insertion order
        tl.events = _distinct(tl.events)
        seen = truncate_attempts(tl.attempts, end_ms - 1)
        events_by_service[service_id] = tl.events
        attempts.extend(seen)
        first = tl.events[0].occur_time if tl.events else start_ms
        services.append(
            ServiceInfo(
                service_id=service_id,
                service_name=f"service-{names[index]:05d}",
                status=_status(seen, tl.events),
                infer_type=rng.choices(INFER_TYPES, weights=(0.8, 0.15, 0.05))[0],
                owner=owners[index % len(owners)],
                publish_at=first - rng.randint(DAY_MS, 60 * DAY_MS),
                update_time=tl.events[-1].occur_time if tl.events else start_ms,
                description=f"simulated service {index}",
                tenant=owners[0],
                project=owners[0],
                invocation_times=rng.randint(0, 1_000_000),
                failed_times=rng.randint(0, 100),
            )
        )
    history = History(services, events_by_service, attempts, start_ms, end_ms)
    log.info(
        "generated %d services, %d events, %d attempts from %d to %d",
        len(services),
        history.event_count,
        len(attempts),
        start_ms,
        end_ms,
    )
    return history
