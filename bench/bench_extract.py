"""Extraction throughput: events/s from the simulator with 1, 4 and 8 workers (no database).

Starts the simulator as a subprocess (200 services x 1 day, ~3000 events per service-day, no
faults), extracts the whole day through `extract_window` (IAM auth, paging, validation, the
bounded queue) and prints the median of several runs per worker count. A script, not a test:
    .venv/bin/python bench/bench_extract.py [--runs 3] [--services 200] [--events 3000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, date, datetime, timedelta

from pipelines.assets.partitions import day_windows
from pipelines.resources import ModelArtsResource
from pipelines.simulator.process import pipeline_environment, running_simulator
from pipelines.source.extract import extract_window
from pipelines.source.stats import ExtractionStats


def _resource(env: dict[str, str], workers: int) -> ModelArtsResource:
    return ModelArtsResource(
        endpoint=env["MODELARTS_ENDPOINT"],
        project_id=env["MODELARTS_PROJECT_ID"],
        iam_endpoint=env["HUAWEICLOUD_IAM_ENDPOINT"],
        username=env["HUAWEICLOUD_USERNAME"],
        password=env["HUAWEICLOUD_PASSWORD"],
        domain=env["HUAWEICLOUD_DOMAIN"],
        region=env["HUAWEICLOUD_REGION"],
        workers=workers,
        max_requests_per_s=0,  # measure the extractor, not the rate limit
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--workers", default="1,4,8")
    args = parser.parse_args()
    end = date(2026, 11, 20)
    sim_args = ["--services", str(args.services), "--days", "1", "--end-date", end.isoformat()]
    sim_args += ["--events-per-service-day", str(args.events)]
    with running_simulator(sim_args, timeout_s=300) as info:
        env = pipeline_environment(info, auth="password")
        start = end - timedelta(days=1)
        _, window = next(day_windows(*_day_bounds(start)))
        print(f"simulator: {info.services} services, {info.events} events, 1 day")
        print(f"{'workers':>8}{'median events/s':>18}{'runs (events/s)':>40}")
        for workers in [int(w) for w in args.workers.split(",")]:
            resource = _resource(env, workers)
            service_ids = [s.service_id for s in resource.build_client().list_services()]
            rates = []
            for _ in range(args.runs):
                client = resource.build_client(ExtractionStats())
                began = time.perf_counter()
                fetched = sum(
                    len(page.events)
                    for page in extract_window(
                        client, service_ids, window, resource.extract_settings()
                    )
                )
                rates.append(fetched / (time.perf_counter() - began))
            runs = ", ".join(f"{r:,.0f}" for r in rates)
            print(f"{workers:>8}{statistics.median(rates):>18,.0f}{runs:>40}")


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


if __name__ == "__main__":
    main()
