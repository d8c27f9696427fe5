"""Small helpers shared by the core modules (no numerics here)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["sha256_file", "preview", "PathLike"]

PathLike = str | os.PathLike


def sha256_file(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def preview(items: Iterable[object], limit: int = 10) -> str:
    """Comma-separated list of at most ``limit`` items, with a count of the rest."""
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    if len(items) > limit:
        shown += f", ... ({len(items) - limit} more)"
    return shown


def as_path(path: PathLike) -> Path:
    """``Path`` with the user's home expanded."""
    return Path(os.fspath(path)).expanduser()
