"""The parts a leaderboard ran in: when each started and stopped, and what it finished.

A long leaderboard runs in parts (each resumes from the cache), so the wall time of the whole run
is the sum of its parts, and a part that was killed never reaches the end of :func:`run
<topiceval.leaderboard.runner.run>`. Each part therefore appends to a ledger in the cache as it
goes: a ``start`` record, one ``cell`` record per finished cell, an ``alive`` record every
minute while it runs (:data:`HEARTBEAT_S`; a part can spend hours on one cell) and an ``end``
record. A part without ``end`` (killed) is counted up to its last record, so its wall time is a
lower bound, short by at most a minute.

The ledger is one JSON-lines file per leaderboard name (``CACHE/history/<hash>.jsonl``), shared
by every checkout that uses the cache. Records are single ``write`` calls on a file opened for
appending, so two processes never interleave inside a line. Plain JSON lines rather than a
database: a human reads them, and a killed part leaves at worst one truncated last line, which
:func:`read_parts` skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from topiceval.leaderboard.config import stable_hash

__all__ = ["Ledger", "history_file", "merge_parts", "read_parts", "summarise"]

#: Folder of the ledgers, inside the leaderboard cache.
HISTORY_DIR = "history"
#: Seconds between the ``alive`` records of a running part (:meth:`Ledger.heartbeat`).
HEARTBEAT_S = 60.0


def history_file(cache: Path, name: str) -> Path:
    """The ledger of the leaderboard called ``name`` in the cache ``cache``."""
    return Path(cache) / HISTORY_DIR / f"{stable_hash({'leaderboard': name})[:16]}.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Ledger:
    """Appends the records of one part (one call of ``run``) to the leaderboard's ledger.

    Parameters
    ----------
    cache
        The leaderboard cache folder.
    name
        The leaderboard's name (``config.name``): parts of the same leaderboard share a ledger.
    """

    def __init__(self, cache: Path, name: str) -> None:
        self.path = history_file(cache, name)
        self.part = uuid.uuid4().hex[:12]
        self._t0 = time.perf_counter()

    def _append(self, record: dict[str, Any]) -> None:
        record = {"part": self.part, "time": _now(), "elapsed_s": round(time.perf_counter() - self._t0, 3), **record}
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def start(self, *, config_sha256: str, backend: str, n_jobs: int, cells: int, cached: int) -> None:
        """The part begins: ``cells`` to work through, ``cached`` of them already complete."""
        self._append({"event": "start", "config_sha256": config_sha256, "backend": backend, "n_jobs": n_jobs,
                      "cells": cells, "cached": cached, "cpus": os.cpu_count()})

    def cell(self, *, dataset: str, model: str, seed: int, status: str, trained: bool, wall_s: float) -> None:
        """A cell finished (done, skipped or failed), after ``wall_s`` seconds in its worker."""
        self._append({"event": "cell", "dataset": dataset, "model": model, "seed": int(seed), "status": status,
                      "trained": bool(trained), "wall_s": round(float(wall_s), 3)})

    def alive(self) -> None:
        """The part is still running (written between cells, which may take hours)."""
        self._append({"event": "alive"})

    @contextlib.contextmanager
    def heartbeat(self, every: float | None = None) -> Iterator[None]:
        """Write an :meth:`alive` record every ``every`` seconds (default :data:`HEARTBEAT_S`)
        while the block runs.

        A daemon thread writes them, so a killed process stops writing with it. A record that
        cannot be written (a full disk) is skipped rather than stopping the run.
        """
        stop = threading.Event()
        interval = HEARTBEAT_S if every is None else float(every)

        def beat() -> None:
            while not stop.wait(interval):
                with contextlib.suppress(OSError):
                    self.alive()

        thread = threading.Thread(target=beat, name="topiceval-ledger-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def end(self, *, wall_s: float) -> None:
        """The part ended normally after ``wall_s`` seconds."""
        self._append({"event": "end", "wall_s": round(float(wall_s), 3)})


def read_parts(path: Path) -> list[dict[str, Any]]:
    """The parts in a ledger, oldest first.

    Returns
    -------
    list of dict
        Per part: ``part``, ``started``, ``ended`` (the ``end`` record, else the last record),
        ``wall_s`` (the part's wall time; for a part without ``end``, up to its last record, a
        cell or an ``alive`` record),
        ``complete`` (it reached its end), ``trained`` (cells trained in it), ``finished``
        (cells that finished in it, cached ones included), ``failed``, ``backend``, ``n_jobs``,
        ``config_sha256``. A line that is not JSON (a part killed mid-write) is skipped.
    """
    path = Path(path)
    if not path.is_file():
        return []
    parts: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or "part" not in record:
            continue
        part = parts.setdefault(record["part"], {
            "part": record["part"], "started": None, "ended": None, "wall_s": 0.0, "complete": False,
            "trained": 0, "finished": 0, "failed": 0, "backend": None, "n_jobs": None, "config_sha256": None})
        event = record.get("event")
        if event == "start":
            part.update(started=record["time"], backend=record.get("backend"), n_jobs=record.get("n_jobs"),
                        config_sha256=record.get("config_sha256"))
        elif event == "cell":
            part["finished"] += 1
            part["trained"] += bool(record.get("trained"))
            part["failed"] += record.get("status") == "failed"
        elif event == "end":
            part["complete"] = True
        part["ended"] = record["time"]
        part["wall_s"] = float(record.get("wall_s") if event == "end" else record.get("elapsed_s", 0.0))
    return sorted((p for p in parts.values() if p["started"]), key=lambda p: p["started"])


def summarise(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the parts: their number, summed wall time, cells trained, first start, last end."""
    return {
        "parts": len(parts),
        "wall_s": float(sum(p["wall_s"] for p in parts)),
        "trained": int(sum(p["trained"] for p in parts)),
        "incomplete": int(sum(not p["complete"] for p in parts)),
        "first_started": parts[0]["started"] if parts else None,
        "last_ended": parts[-1]["ended"] if parts else None,
    }


def merge_parts(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parts of several ledgers (say, those of a published report and of this machine's
    cache), each once (by its ``part`` id; the later list's record wins), oldest first."""
    merged: dict[str, dict[str, Any]] = {}
    for parts in lists:
        for part in parts:
            merged[str(part["part"])] = dict(part)
    return sorted(merged.values(), key=lambda p: str(p.get("started") or ""))
