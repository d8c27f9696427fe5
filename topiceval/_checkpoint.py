"""Training checkpoints of resumable fits (d-scIGM, Spectra) and the keys that tie a checkpoint to
its fit (d-scIGM, Spectra, cNMF).

A checkpoint is one ``torch.save`` file of tensors, numbers and text, written atomically and read
back with ``weights_only=True`` (nothing is unpickled), holding the ``key`` of the fit it belongs
to: a fit reads it only when the key matches, so a file left by other data, settings, seed or
initial weights is ignored. The key is a SHA-256 the caller builds with :func:`hash_array` and
:func:`hash_tensors` (and the settings as JSON), in an order of its own. Torch is imported on use.
"""

from __future__ import annotations

import contextlib
import glob
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from topiceval.io import atomic_path

__all__ = ["hash_array", "hash_tensors", "load_state", "save_state"]

#: A temporary checkpoint file this old is what a killed save left behind (a save takes seconds).
STALE_TEMPORARY_S = 3600.0


def hash_array(digest: Any, x: Any) -> None:
    """Feed ``x`` to ``digest`` (a :mod:`hashlib` object): a dense array's bytes, or a sparse
    matrix's ``indptr``, ``indices`` and ``data`` (CSR: the caller converts)."""
    if sp.issparse(x):
        for part in (x.indptr, x.indices, x.data):
            digest.update(np.ascontiguousarray(part).tobytes())
    else:
        digest.update(np.ascontiguousarray(x).tobytes())


def hash_tensors(digest: Any, tensors: Mapping[str, Any]) -> None:
    """Feed a state dict to ``digest``: each name and its tensor's bytes, in name order."""
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())


def load_state(path: str | Path, key: str) -> dict[str, Any] | None:
    """The state saved at ``path`` for the fit ``key``; ``None`` when there is none, it cannot be
    read (another torch, a foreign file) or it belongs to another fit."""
    import torch

    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - unreadable: the fit starts over
        return None
    return state if isinstance(state, dict) and state.get("key") == key else None


def save_state(path: str | Path, key: str, state: Mapping[str, Any]) -> None:
    """Write ``state`` with its ``key`` to ``path`` atomically (never half a file)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as target:
        torch.save({"key": key, **state}, target)
    _remove_stale_temporaries(path)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files of ``path`` (:func:`~topiceval.io.atomic_path`'s
    ``.NAME.*.tmp``) left by saves that were killed before their rename: a checkpoint can be a
    gigabyte, and a run made in parts is killed often. Only files older than
    :data:`STALE_TEMPORARY_S` go, so a save in progress in another process is never touched."""
    cutoff = time.time() - STALE_TEMPORARY_S
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
