"""Everything a running simulator holds: history, served logs, tokens, faults and counters."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipelines.simulator.config import SimulatorConfig
from pipelines.simulator.faults import FaultDice
from pipelines.simulator.hostile import BAD_ANSWERS, hostile_records, hostile_service
from pipelines.simulator.iam import TokenStore
from pipelines.simulator.keys import KeyStore
from pipelines.simulator.models import History
from pipelines.simulator.quota import Quota
from pipelines.simulator.stats import ServerStats
from pipelines.simulator.store import EventStore, ServiceLog
from pipelines.simulator.tampering import tamper
from pipelines.simulator.v2store import RecordStore, is_v2_service


@dataclass
class SimulatorState:
    history: History
    config: SimulatorConfig
    store: EventStore
    tokens: TokenStore
    keys: KeyStore
    stats: ServerStats
    dice: FaultDice
    # the v2 generation (v2store.py): empty unless config.api is v2 or mixed
    records: RecordStore
    growth_rng: random.Random
    quota: Quota


def build_state(history: History, config: SimulatorConfig) -> SimulatorState:
    """Load the history into a store, mixing in repeats and malformed records if configured."""
    stats = ServerStats()
    rng = random.Random(config.seed)
    logs = []
    v2_services = []
    for index, service in enumerate(history.services):
        if is_v2_service(config.api, index):  # served by /v2 only: a service has one generation
            v2_services.append((service, history.events_by_service[service.service_id]))
            continue
        records, duplicates, malformed = tamper(
            history.events_by_service[service.service_id],
            rng,
            config.duplicate_rate,
            config.malformed_rate,
        )
        if duplicates:
            stats.count_fault("duplicate", duplicates)
        if malformed:
            stats.count_fault("malformed", malformed)
        logs.append(ServiceLog(service, records))
    if config.hostile:
        publish = history.start_ms
        logs.append(ServiceLog(hostile_service(publish), list(hostile_records(history.start_ms))))
    if config.hostile_answers:
        for service_id in BAD_ANSWERS:
            logs.append(ServiceLog(hostile_service(history.start_ms, service_id), []))
    return SimulatorState(
        history=history,
        config=config,
        store=EventStore(logs),
        tokens=TokenStore(
            config.token_ttl_s,
            config.static_token,
            config.credential_real_life_s,
            clock=config.now,
        ),
        keys=KeyStore(
            config.access_key,
            config.secret_key,
            config.temporary_key_ttl_s,
            config.credential_real_life_s,
            clock=config.now,
        ),
        quota=Quota(
            config.quota_per_window, config.quota_window_s, config.quota_answer, config.now
        ),
        stats=stats,
        dice=FaultDice(config),
        records=RecordStore.build(
            v2_services,
            config.v2_time_filter,
            history.end_ms,
            config.malformed_rate,
            random.Random(f"v2-{config.seed}"),
        ),
        growth_rng=random.Random(f"growth-{config.seed}"),
    )
