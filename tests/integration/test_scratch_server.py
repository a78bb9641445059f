"""The throwaway Postgres of the benchmarks: the embedded server stops when its block ends, before
its folder is removed (it used to outlive the folder, running until killed by hand)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from pipelines.warehouse.embedded import scratch_server

pytestmark = pytest.mark.integration


def _pgdata(url: str) -> Path:
    """The server's data directory: its socket directory, the URL's host."""
    return Path(str(make_url(url).query["host"]))


def _postmaster_pid(url: str) -> int:
    return int((_pgdata(url) / "postmaster.pid").read_text().split("\n", 1)[0])


def _running(pid: int) -> bool:
    """The process exists and has not exited (an exited postmaster is a zombie until init reaps
    it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_embedded_scratch_server_stops_before_its_folder_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with scratch_server("test-scratch-pg-") as url:
        folder = _pgdata(url).parent
        assert folder.name.startswith("test-scratch-pg-")
        pid = _postmaster_pid(url)
        with psycopg.connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    assert not _running(pid)
    assert not folder.exists()


def test_a_kept_folder_keeps_its_data_and_the_server_still_stops(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with scratch_server("test-scratch-pg-", tmp_path) as url:
        assert _pgdata(url) == tmp_path / "pgdata"
        pid = _postmaster_pid(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create database kept")
    assert not _running(pid)
    with scratch_server("test-scratch-pg-", tmp_path) as url, psycopg.connect(url) as conn:
        assert conn.execute("select 1 from pg_database where datname = 'kept'").fetchone() == (1,)


def test_a_configured_server_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://bench@db.example:5432/postgres")
    with scratch_server("test-scratch-pg-") as url:
        assert url == "postgresql://bench@db.example:5432/postgres"
