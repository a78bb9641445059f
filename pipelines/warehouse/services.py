"""The `services` dimension: the service listing, inserted or refreshed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine

from pipelines.source.models import ServiceInfo
from pipelines.warehouse.encoding import raw_record_json
from pipelines.warehouse.sql_files import read_sql
from pipelines.warehouse.transactions import transaction


def upsert_services(engine: Engine, services: Iterable[ServiceInfo]) -> int:
    """Insert or refresh services in the `services` dimension; returns how many."""
    params: list[dict[str, Any]] = [
        {
            "service_id": s.service_id,
            "service_name": s.service_name,
            "status": s.status,
            "infer_type": s.infer_type,
            "owner": s.owner,
            "publish_at_ms": s.publish_at_ms,
            "raw": raw_record_json(s.raw),
        }
        for s in services
    ]
    # One order for every writer, so concurrent upserts cannot deadlock.
    params.sort(key=lambda row: str(row["service_id"]))
    with transaction(engine) as conn, conn.cursor() as cur:
        cur.executemany(read_sql("load/upsert_services.sql"), params)
    return len(params)
