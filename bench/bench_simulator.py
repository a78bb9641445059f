"""Benchmark of the simulator: history generation time and 1000-event pages/s over loopback.

Prints figures, never pass/fail. Run: .venv/bin/python bench/bench_simulator.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import threading
import time

import requests

from pipelines.simulator.history import HistoryConfig, generate_history
from pipelines.simulator.process import SimulatorInfo, running_simulator
from pipelines.source.auth import IAMCredentials, IAMPasswordAuth, Secret

END_DATE = "2026-11-29"


def bench_generation() -> None:
    config = HistoryConfig(
        services=2000, days=1, end_date=dt.date.fromisoformat(END_DATE), events_per_service_day=500
    )
    started = time.perf_counter()
    history = generate_history(config)
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"generate 2000 services x 1 day x 500 events: {history.event_count:,} events "
        f"in {elapsed:.2f} s (process peak RSS {peak_mib:.0f} MiB)"
    )


def _token(info: SimulatorInfo) -> str:
    """A token from the simulator's IAM, fetched as the pipeline fetches its own."""
    iam = IAMCredentials(info.url, info.username, Secret(info.password), info.domain, info.region)
    with requests.Session() as session:
        return IAMPasswordAuth(iam, session).token()


def _client(
    info: SimulatorInfo, token: str, service_ids: list[str], seconds: float, out: list[int]
) -> None:
    session = requests.Session()
    session.headers["X-Auth-Token"] = token
    pages = 0
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        service_id = service_ids[i % len(service_ids)]
        url = f"{info.url}/v1/{info.project_id}/services/{service_id}/events"
        params: dict[str, str | int] = {
            "order": "asc",
            "limit": 1000,
            "offset": (i // len(service_ids)) % 4,
        }
        response = session.get(url, params=params, timeout=30)
        response.raise_for_status()
        if response.json()["count"] != 1000:
            raise RuntimeError(f"short page from {service_id}")
        pages += 1
        i += 1
    out.append(pages)


def bench_pages(seconds: float) -> None:
    args = ["--services", "200", "--days", "1", "--end-date", END_DATE]
    args += ["--events-per-service-day", "5000"]
    with running_simulator(args) as info:
        token = _token(info)
        listing = requests.get(
            f"{info.url}/v1/{info.project_id}/services",
            headers={"X-Auth-Token": token},
            params={"limit": 1000},
            timeout=30,
        ).json()
        service_ids = [s["service_id"] for s in listing["services"]]
        # warm up: every service's records get encoded once, on first use
        with requests.Session() as session:
            for service_id in service_ids:
                session.get(
                    f"{info.url}/v1/{info.project_id}/services/{service_id}/events",
                    headers={"X-Auth-Token": token},
                    params={"limit": 1},
                    timeout=30,
                ).raise_for_status()
        for clients in (1, 4):
            counts: list[int] = []
            threads = [
                threading.Thread(
                    target=_client, args=(info, token, service_ids[k::clients], seconds, counts)
                )
                for k in range(clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            total = sum(counts)
            print(
                f"{clients} client(s): {total / seconds:,.0f} pages/s of 1000 events "
                f"({total * 1000 / seconds / 1e6:.2f} M events/s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    bench_generation()
    bench_pages(args.seconds)


if __name__ == "__main__":
    main()
