"""The garbage-collector settings of a big ingest run are restored afterwards, even on error."""

from __future__ import annotations

import gc

import pytest

from pipeline.ingest.workers import relaxed_gc as _relaxed_gc


def test_thresholds_and_freeze_are_restored_even_when_the_run_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), _relaxed_gc(enabled=True):
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > 0
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_small_runs_leave_the_collector_alone():
    before = gc.get_threshold()
    with _relaxed_gc(enabled=False):
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
