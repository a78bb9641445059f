"""Command line: generate a history, serve it, print one ready JSON line, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
from types import FrameType

import orjson

from pipelines.simulator.config import (
    API_MODES,
    FAULT_KINDS,
    OFFSET_MODES,
    TIME_FILTERS,
    SimulatorConfig,
)
from pipelines.simulator.families import VOCABULARIES
from pipelines.simulator.history import HistoryConfig, generate_history
from pipelines.simulator.process import ready_line
from pipelines.simulator.quota import QUOTA_ANSWERS
from pipelines.simulator.server import make_server

log = logging.getLogger("pipelines.simulator")


def _parser() -> argparse.ArgumentParser:
    defaults, hist = SimulatorConfig(), HistoryConfig()
    p = argparse.ArgumentParser(
        prog="modelarts-simulator", description="Local fake of the ModelArts event log API."
    )
    g = p.add_argument_group("history")
    g.add_argument("--services", type=int, default=hist.services)
    g.add_argument("--days", type=int, default=hist.days)
    g.add_argument(
        "--end-date",
        type=dt.date.fromisoformat,
        default=None,
        help="exclusive end day, UTC (default: today UTC)",
    )
    g.add_argument("--seed", type=int, default=hist.seed)
    g.add_argument(
        "--incidents-per-service-day", type=float, default=hist.incidents_per_service_day
    )
    g.add_argument(
        "--events-per-service-day",
        type=int,
        default=None,
        help="pad each service-day to about this many events (benchmarks)",
    )
    g.add_argument(
        "--vocabulary",
        choices=VOCABULARIES,
        default=hist.vocabulary,
        help="the event texts: the 2019 reference family, the console's, or a per-service mix",
    )
    g.add_argument(
        "--unknown-texts-per-service-day",
        type=int,
        default=0,
        help="add texts no rule knows (the coverage check warns)",
    )
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0: a free port")
    s.add_argument("--project-id", default=defaults.project_id)
    s.add_argument("--username", default=defaults.username)
    s.add_argument("--password", default=defaults.password)
    s.add_argument("--domain", default=defaults.domain)
    s.add_argument("--region", default=defaults.region)
    s.add_argument("--access-key", default=defaults.access_key)
    s.add_argument("--secret-key", default=defaults.secret_key)
    s.add_argument("--token-ttl-s", type=float, default=defaults.token_ttl_s)
    s.add_argument(
        "--temporary-key-ttl-s",
        type=float,
        default=defaults.temporary_key_ttl_s,
        help="life of the temporary AK/SK the metadata endpoints hand out",
    )
    s.add_argument(
        "--credential-real-life-s",
        type=float,
        default=None,
        help="tokens and temporary keys stop working after this many seconds, whatever "
        "their expires_at says",
    )
    s.add_argument("--static-token", default=None)
    s.add_argument("--offset-mode", choices=OFFSET_MODES, default=defaults.offset_mode)
    s.add_argument("--log-level", default="WARNING")
    s.add_argument(
        "--api",
        choices=API_MODES,
        default=defaults.api,
        help="which API generation serves the services: v1 (old-version), v2 (new-version) or "
        "mixed (half each, distinct services)",
    )
    s.add_argument(
        "--v2-time-filter",
        choices=TIME_FILTERS,
        default=defaults.v2_time_filter,
        help="which record time the v2 events call's start_time/end_time filter on",
    )
    s.add_argument(
        "--latency-ms",
        type=float,
        default=defaults.latency_s * 1000,
        help="every ModelArts and IAM answer waits this long first, as a real region's round "
        "trip (default: 0)",
    )
    f = p.add_argument_group("faults (all off by default)")
    f.add_argument("--fault-rate", type=float, default=0.0)
    f.add_argument(
        "--fault-kinds",
        default=",".join(FAULT_KINDS),
        help=f"comma list of {','.join(FAULT_KINDS)}",
    )
    f.add_argument("--retry-after-s", type=int, default=defaults.retry_after_s)
    f.add_argument("--slow-s", type=float, default=defaults.slow_s)
    f.add_argument("--duplicate-rate", type=float, default=0.0)
    f.add_argument("--arrival-rate", type=float, default=0.0)
    f.add_argument("--malformed-rate", type=float, default=0.0)
    f.add_argument(
        "--growth-rate",
        type=float,
        default=0.0,
        help="chance that a served v2 events page lets one of the service's records grow",
    )
    f.add_argument(
        "--v1-retired",
        action="store_true",
        help="every /v1 ModelArts call answers 404 APIG.0101 (old-version services discontinued)",
    )
    f.add_argument("--hostile", action="store_true", help="add the hostile service (hostile.py)")
    f.add_argument(
        "--hostile-answers", action="store_true", help="add services that answer wrongly"
    )
    f.add_argument(
        "--iam-faults",
        action="store_true",
        help="IAM token requests get the same faults (a slow one delivers an aged token)",
    )
    f.add_argument("--fault-seed", type=int, default=defaults.seed)
    q = p.add_argument_group("limits of real regions (all off by default)")
    q.add_argument(
        "--quota-per-minute",
        type=int,
        default=defaults.quota_per_window,
        help="ModelArts calls each credential may make per window (429 APIG.0308 beyond); 0: none",
    )
    q.add_argument(
        "--quota-window-s",
        type=float,
        default=defaults.quota_window_s,
        help="the quota's window (default 60: a minute; shorter for tests)",
    )
    q.add_argument(
        "--quota-answer",
        choices=QUOTA_ANSWERS,
        default=defaults.quota_answer,
        help="stated: the real gateway's 429 (limit in the message, no Retry-After); bare: "
        "neither; retry-after: Retry-After, no limit",
    )
    q.add_argument(
        "--clock-offset-s",
        type=float,
        default=defaults.clock_offset_s,
        help="the gateway's clock runs this far ahead of this machine's (negative: behind)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    history = generate_history(
        HistoryConfig(
            services=args.services,
            days=args.days,
            end_date=args.end_date,
            seed=args.seed,
            incidents_per_service_day=args.incidents_per_service_day,
            events_per_service_day=args.events_per_service_day,
            vocabulary=args.vocabulary,
            unknown_texts_per_service_day=args.unknown_texts_per_service_day,
        )
    )
    config = SimulatorConfig(
        project_id=args.project_id,
        username=args.username,
        password=args.password,
        domain=args.domain,
        region=args.region,
        access_key=args.access_key,
        secret_key=args.secret_key,
        temporary_key_ttl_s=args.temporary_key_ttl_s,
        credential_real_life_s=args.credential_real_life_s,
        token_ttl_s=args.token_ttl_s,
        static_token=args.static_token,
        offset_mode=args.offset_mode,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(k for k in args.fault_kinds.split(",") if k),
        retry_after_s=args.retry_after_s,
        slow_s=args.slow_s,
        latency_s=args.latency_ms / 1000,
        duplicate_rate=args.duplicate_rate,
        arrival_rate=args.arrival_rate,
        malformed_rate=args.malformed_rate,
        hostile=args.hostile,
        hostile_answers=args.hostile_answers,
        iam_faults=args.iam_faults,
        seed=args.fault_seed,
        api=args.api,
        v2_time_filter=args.v2_time_filter,
        growth_rate=args.growth_rate,
        v1_retired=args.v1_retired,
        quota_per_window=args.quota_per_minute,
        quota_window_s=args.quota_window_s,
        quota_answer=args.quota_answer,
        clock_offset_s=args.clock_offset_s,
    )
    server = make_server(history, config, args.host, args.port)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    worker = threading.Thread(target=server.serve_forever, name="simulator", daemon=True)
    worker.start()
    print(orjson.dumps(ready_line(server.url, server.state)).decode(), flush=True)
    while not stop.wait(0.5):
        pass
    log.info("stopping the simulator")
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
