"""The ledger of the parts a leaderboard ran in (topiceval.leaderboard.history)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from topiceval.leaderboard import history


def test_parts_finished_and_stopped_are_read_back_with_their_wall_time(tmp_path):
    old = os.umask(0o022)
    try:
        first = history.Ledger(tmp_path, "board")
        first.start(config_sha256="abc", backend="joblib", n_jobs=2, cells=3, cached=1)
        first.cell(dataset="d", model="nmf", seed=0, status="done", trained=True, wall_s=1.5)
        first.cell(dataset="d", model="nmf", seed=1, status="failed", trained=False, wall_s=0.5)
        first.cell(dataset="d", model="lda", seed=0, status="done", trained=False, wall_s=0.0)
        first.end(wall_s=12.0)
        second = history.Ledger(tmp_path, "board")
        second.start(config_sha256="abd", backend="sequential", n_jobs=1, cells=2, cached=0)
        second.cell(dataset="d", model="nmf", seed=1, status="done", trained=True, wall_s=3.0)
    finally:
        os.umask(old)
    path = history.history_file(tmp_path, "board")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the umask applies
    with open(path, "a") as handle:
        handle.write('{"part": "' + second.part + '", "event": "cell", "tim')  # killed mid-write
    # another leaderboard's ledger is another file
    assert history.history_file(tmp_path, "other") != path
    assert history.read_parts(history.history_file(tmp_path, "other")) == []

    parts = history.read_parts(path)
    assert [p["part"] for p in parts] == [first.part, second.part]
    done, stopped = parts
    assert done["complete"] and done["wall_s"] == 12.0
    assert (done["finished"], done["trained"], done["failed"]) == (3, 1, 1)
    assert (done["backend"], done["n_jobs"], done["config_sha256"]) == ("joblib", 2, "abc")
    assert not stopped["complete"] and (stopped["finished"], stopped["trained"]) == (1, 1)
    last = [json.loads(line) for line in path.read_text().splitlines()[:-1]][-1]
    assert stopped["wall_s"] == last["elapsed_s"] and stopped["ended"] == last["time"]  # up to its last record
    total = history.summarise(parts)
    assert total == {"parts": 2, "wall_s": pytest.approx(12.0 + last["elapsed_s"]), "trained": 2, "incomplete": 1,
                     "first_started": done["started"], "last_ended": stopped["ended"]}
    assert history.summarise([])["parts"] == 0


def test_a_part_busy_on_one_long_cell_is_counted_up_to_its_last_heartbeat(tmp_path):
    import time

    ledger = history.Ledger(tmp_path, "board")
    ledger.start(config_sha256="abc", backend="joblib", n_jobs=2, cells=1, cached=0)
    with ledger.heartbeat(every=0.05):
        time.sleep(0.5)  # one cell training, none finished; then the part is killed (no end)
    records = [json.loads(line) for line in history.history_file(tmp_path, "board").read_text().splitlines()]
    beats = [r for r in records if r["event"] == "alive"]
    assert len(beats) >= 3 and all(r["part"] == ledger.part for r in beats)
    (part,) = history.read_parts(history.history_file(tmp_path, "board"))
    assert not part["complete"] and (part["finished"], part["trained"]) == (0, 0)
    assert part["wall_s"] == beats[-1]["elapsed_s"] >= 0.3  # not 0: the start record's time
    count = len(records)
    time.sleep(0.2)  # the thread stopped with the block
    assert len(history.history_file(tmp_path, "board").read_text().splitlines()) == count
