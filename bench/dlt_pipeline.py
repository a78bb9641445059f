"""The dlt baseline of bench_load.py: dlt's rest_api source into Postgres with a merge on the key.

Runs inside bench/.venv-dlt (dlt is never a project dependency), started by bench_load.py as a
subprocess: `python bench/dlt_pipeline.py CONFIG_JSON`. Prints one JSON line: seconds, the
events table's row count and the process's peak RSS. With `"workers": N` in the config (the
parallel peer of bench_command.py) the events resource is `parallelized` and dlt's extract pool
has N threads: N services' pages in flight at once, as our N workers.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import dlt
import psycopg2
from dlt.sources.rest_api import rest_api_source


def events_source(config: dict[str, Any]) -> Any:
    """The services listing and every service's events in the window, paged as the API says:
    `offset` is the page index from 0, 1000 events per page, ascending time; the events of
    several services fetched at once when `workers` is set."""
    page_index = {
        "type": "page_number",
        "base_page": 0,
        "page_param": "offset",
        "total_path": None,  # total_count counts events, not pages: stop on the empty page
        "stop_after_empty_page": True,
    }
    return rest_api_source(
        {
            "client": {
                "base_url": f"{config['url']}/v1/{config['project_id']}/",
                "auth": {
                    "type": "api_key",
                    "name": "X-Auth-Token",
                    "api_key": config["token"],
                    "location": "header",
                },
            },
            "resource_defaults": {"endpoint": {"paginator": page_index}},
            "resources": [
                {
                    "name": "services",
                    "primary_key": "service_id",
                    "write_disposition": "merge",
                    "endpoint": {
                        "path": "services",
                        "params": {"limit": 1000},
                        "data_selector": "services",
                    },
                },
                {
                    "name": "service_events",
                    "primary_key": ["_services_service_id", "occur_time", "event_info"],
                    "write_disposition": "merge",
                    "include_from_parent": ["service_id"],
                    # each service's pages in a thread of the extract pool (EXTRACT__WORKERS)
                    "parallelized": bool(config.get("workers")),
                    "endpoint": {
                        "path": "services/{resources.services.service_id}/events",
                        "params": {
                            "start_time": config["start_ms"],
                            "end_time": config["end_ms"] - 1,
                            "limit": 1000,
                            "sort_by": "occur_time",
                            "order": "asc",
                        },
                        "data_selector": "events",
                    },
                },
            ],
        }
    )


def postgres_url(url: str) -> str:
    """dlt insists on a host: give it one, and keep a unix socket folder in `?host=`, which libpq
    reads after (and so over) the URL's host."""
    parts = urlsplit(url)
    if parts.hostname:
        return url
    return parts._replace(netloc=f"{parts.netloc.rstrip('@')}@localhost").geturl()


def main() -> None:
    config = json.loads(sys.argv[1])
    if config.get("workers"):
        # dlt reads its settings from the environment: the extract pool's size (default 5)
        os.environ["EXTRACT__WORKERS"] = str(config["workers"])
    pipeline = dlt.pipeline(
        pipeline_name="modelarts_events_bench",
        pipelines_dir=config["pipelines_dir"],
        destination=dlt.destinations.postgres(credentials=postgres_url(config["database_url"])),
        dataset_name="dlt_bench",
        progress="log" if config.get("verbose") else None,
    )
    started = time.perf_counter()
    pipeline.run(events_source(config))
    seconds = time.perf_counter() - started
    with psycopg2.connect(postgres_url(config["database_url"])) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from dlt_bench.service_events")
        rows = cur.fetchone()[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mb": peak_mb}))


if __name__ == "__main__":
    main()
