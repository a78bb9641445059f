"""The garbage-collector threshold a load raises is restored, also after a failure."""

from __future__ import annotations

import gc
import threading

import pytest

from pipelines.ingest import LOAD_GC_THRESHOLD, _fewer_gc_passes


def test_the_threshold_is_raised_while_loads_run_and_restored_after_the_last() -> None:
    before = gc.get_threshold()
    assert before[0] != LOAD_GC_THRESHOLD
    inner_started, outer_may_end = threading.Event(), threading.Event()

    def other_load() -> None:
        with _fewer_gc_passes():
            inner_started.set()
            outer_may_end.wait(5)

    with _fewer_gc_passes():
        assert gc.get_threshold() == (LOAD_GC_THRESHOLD, *before[1:])
        worker = threading.Thread(target=other_load)
        worker.start()
        assert inner_started.wait(5)
    # the other load still runs: its threshold stays
    assert gc.get_threshold()[0] == LOAD_GC_THRESHOLD
    outer_may_end.set()
    worker.join(5)
    assert gc.get_threshold() == before


def test_a_failing_load_restores_the_threshold() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), _fewer_gc_passes():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
