"""Training checkpoints (topiceval._checkpoint): keyed reading, atomic writing, leftovers."""

from __future__ import annotations

import os
import time

import torch  # the test extra installs the CPU build

from topiceval import _checkpoint


def test_a_checkpoint_is_read_back_only_with_its_key(tmp_path):
    path = tmp_path / "ckpt"
    _checkpoint.save_state(path, "key-a", {"epoch": 3, "weights": torch.arange(4.0)})
    state = _checkpoint.load_state(path, "key-a")
    assert state["epoch"] == 3 and torch.equal(state["weights"], torch.arange(4.0))
    assert _checkpoint.load_state(path, "key-b") is None
    path.write_bytes(b"not a torch file")
    assert _checkpoint.load_state(path, "key-a") is None
    assert _checkpoint.load_state(tmp_path / "absent", "key-a") is None


def test_a_save_removes_what_killed_saves_left_and_nothing_else(tmp_path):
    path = tmp_path / "ckpt"
    old = time.time() - 2 * _checkpoint.STALE_TEMPORARY_S
    stale = tmp_path / ".ckpt.k1ll3d.tmp"      # a save killed before its rename, hours ago
    recent = tmp_path / ".ckpt.1nfl1ght.tmp"   # a save that may still be running elsewhere
    other = tmp_path / ".ckpt2.k1ll3d.tmp"     # another checkpoint's leftover
    unrelated = tmp_path / "ckpt.k1ll3d.tmp"   # not atomic_path's naming
    for file in (stale, recent, other, unrelated):
        file.write_bytes(b"partial")
    for file in (stale, other, unrelated):
        os.utime(file, (old, old))
    _checkpoint.save_state(path, "key", {"epoch": 1})
    assert not stale.exists()
    assert recent.exists() and other.exists() and unrelated.exists()
    assert _checkpoint.load_state(path, "key")["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, recent.name, other.name, unrelated.name])
