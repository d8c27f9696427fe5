"""Download MSigDB files into a local cache, checksummed and safe against concurrent fetches.

Cache folder (:func:`cache_dir`): ``$TOPICEVAL_CACHE`` if set, else the platform's user cache
folder (the platformdirs convention, computed here with the standard library):
``$XDG_CACHE_HOME/topiceval`` or ``~/.cache/topiceval`` on Linux, ``~/Library/Caches/topiceval``
on macOS, ``%LOCALAPPDATA%\\topiceval\\Cache`` on Windows. Inside it::

    manifest.json                                      # sha256, size, URL, time of each file
    msigdb/2024.1.Hs/c2.all.v2024.1.Hs.symbols.gmt     # one folder per release
    msigdb/2024.1.Hs/c2.all.v2024.1.Hs.symbols.gmt.lock

How a file is fetched (:func:`fetch`):

* streamed with :mod:`urllib` into a temporary file beside its destination, with a progress bar,
  a socket timeout and a few retries with exponential back-off (connection errors, time-outs,
  truncated bodies, HTTP 5xx / 408 / 429; an HTTP 404 or other 4xx fails at once);
* refused, with nothing cached, when the server sends an HTML page (``Content-Type: text/html`` or
  a body that starts like one) or a body whose first line has no tab (not a GMT file), or fewer
  bytes than its ``Content-Length``;
* its sha256 is recorded in ``manifest.json`` the first time (trust on first use) and compared on
  every later use and every re-download; a mismatch raises :class:`~topiceval.errors.ChecksumError`
  and leaves the cached file as it was;
* moved into place with an atomic rename, under a per-file lock (``fcntl.flock`` / ``msvcrt``), so
  that concurrent threads or processes fetching the same file download it once and all get the
  same intact file. A lock file exists only while its lock is held (on Windows it stays).

Offline: :class:`~topiceval.errors.DownloadError` names the URL and the exact path to place the file
at; a file placed there by hand is used (its sha256 recorded on first use).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from topiceval._utils import PathLike, as_path, sha256_file
from topiceval.errors import ChecksumError, DownloadError

from .registry import MsigdbFile, resolve

__all__ = [
    "CACHE_ENV",
    "CachedFile",
    "cache_dir",
    "cached_files",
    "download",
    "fetch",
    "read_manifest",
]

#: Environment variable that overrides the cache folder.
CACHE_ENV = "TOPICEVAL_CACHE"
MANIFEST = "manifest.json"
CHUNK = 1 << 16
_SNIFF_BYTES = 4096
#: How long a fetch waits for another process fetching the same file (seconds).
LOCK_TIMEOUT = 1800.0
_RETRY_HTTP = {408, 425, 429, 500, 502, 503, 504}
_HTML_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<title")


# --------------------------------------------------------------------------- cache folder
def cache_dir(override: PathLike | None = None) -> Path:
    """The cache folder: ``override``, else ``$TOPICEVAL_CACHE``, else the platform user cache."""
    if override is not None:
        return as_path(override)
    env = os.environ.get(CACHE_ENV)
    if env:
        return as_path(env)
    return _platform_cache_dir()


def _platform_cache_dir(app: str = "topiceval") -> Path:
    """``platformdirs.user_cache_dir(app, appauthor=False)`` computed with the standard library."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / app / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / app
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / app


# --------------------------------------------------------------------------- manifest
def read_manifest(cache: PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Entries of the cache's manifest: ``{cache key: {sha256, size, url, recorded_at, ...}}``."""
    path = cache_dir(cache) / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DownloadError(f"cannot read the cache manifest {path}: {exc}; delete it to start over") from None
    return dict(data.get("files", {}))


def _record(cache: Path, key: str, entry: dict[str, Any] | None) -> None:
    """Add, replace (or with ``None`` remove) one manifest entry, under the manifest lock."""
    from topiceval.io import atomic_write

    with _file_lock(cache / (MANIFEST + ".lock")):
        files = read_manifest(cache)
        if entry is None:
            files.pop(key, None)
        else:
            files[key] = entry
        with atomic_write(cache / MANIFEST) as handle:
            json.dump({"format": 1, "files": dict(sorted(files.items()))}, handle, indent=2)
            handle.write("\n")


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class CachedFile:
    """A file in the cache, with its manifest entry (``None`` if never recorded)."""

    key: str
    path: Path
    size: int
    entry: dict[str, Any] | None


def cached_files(cache: PathLike | None = None) -> list[CachedFile]:
    """Files under the cache's ``msigdb/`` folder, sorted by key (lock and temporary files skipped)."""
    root = cache_dir(cache)
    manifest = read_manifest(root) if root.exists() else {}
    out = []
    for path in sorted((root / "msigdb").glob("*/*")):
        if path.name.startswith(".") or path.suffix in {".lock", ".part", ".tmp"} or not path.is_file():
            continue
        key = path.relative_to(root).as_posix()
        out.append(CachedFile(key, path, path.stat().st_size, manifest.get(key)))
    return out


# --------------------------------------------------------------------------- locking
@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Exclusive lock on ``path`` between threads and processes (polling, with a time-out).

    On POSIX the lock file is removed on release, so a failed (e.g. offline) fetch leaves nothing
    behind. That is safe because a waiter that obtains the lock checks that ``path`` still names
    the file it locked, and starts again on the new file otherwise. Windows cannot remove an open
    file: there the lock file stays.
    """
    deadline = time.monotonic() + timeout
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as handle:
            while True:
                try:
                    _lock(handle)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise DownloadError(
                            f"waited {timeout:.0f} s for the lock {path} (another download of the "
                            "same file?); if no other topiceval process runs, try again"
                        ) from None
                    time.sleep(0.05)
            if not _same_file(handle, path):  # released and removed by its holder: lock the new one
                _unlock(handle)
                continue
            try:
                yield
            finally:
                if os.name != "nt":
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                _unlock(handle)
            return


def _same_file(handle: IO[bytes], path: Path) -> bool:
    """Whether ``path`` still names the open file ``handle``."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- download
class _Retry(Exception):
    """A transient failure: try again."""


def _sniff(head: bytes, label: str) -> None:
    """Refuse an HTML page or a body that cannot be a GMT file."""
    start = head.lstrip()[:64].lower()
    if start.startswith(_HTML_STARTS):
        raise DownloadError(
            f"{label}: the server sent an HTML page instead of a GMT file (an error or login "
            "page?); nothing was cached"
        )
    if head[:2] == b"\x1f\x8b":  # gzip-compressed GMT: read_gmt checks it
        return
    first_line = head.lstrip(b"\r\n").split(b"\n", 1)[0]
    if b"\t" not in first_line:
        raise DownloadError(
            f"{label}: the server's file is not a GMT file (its first line has no tab: "
            f"{first_line[:60]!r}); nothing was cached"
        )


def download(
    url: str,
    dest: PathLike,
    *,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 1.0,
    progress: bool | None = None,
    expected_sha256: str | None = None,
) -> str:
    """Stream ``url`` into ``dest`` atomically and return the sha256 of its bytes.

    Parameters
    ----------
    url
        ``http(s)://`` or ``file://`` URL of a GMT file.
    dest
        Destination; written through a temporary file beside it and renamed only when the whole
        body arrived and passed the checks, so ``dest`` is never half-written.
    timeout
        Socket time-out in seconds (connection and each read).
    retries
        Attempts in all (at least 1) for transient failures.
    backoff
        Wait ``backoff * 2**i`` seconds before the ``i+1``-th retry.
    progress
        Show a tqdm progress bar: ``True``, ``False``, or ``None`` (only on a terminal).
    expected_sha256
        If given, a body with another sha256 raises :class:`~topiceval.errors.ChecksumError` and
        ``dest`` is left as it was.

    Raises
    ------
    DownloadError
        HTTP error, HTML or non-GMT body, truncated body or no connection after ``retries``
        attempts.
    """
    from topiceval.io import atomic_path

    target = as_path(dest)
    attempts = max(1, int(retries))
    last: str = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            with atomic_path(target, suffix=".part") as tmp:
                digest = _stream(url, tmp, timeout=timeout, progress=progress, label=target.name)
                if expected_sha256 is not None and digest != expected_sha256:
                    raise ChecksumError(
                        f"{target.name} from {url} has sha256 {digest}, but {expected_sha256} was "
                        "recorded when it was first fetched: the server's file changed or is "
                        "corrupt; the cached file was left as it was"
                    )
            return digest
        except _Retry as exc:
            last = str(exc)
    raise DownloadError(
        f"cannot download {url} ({last}; {attempts} attempt{'s' if attempts > 1 else ''}); "
        f"nothing was cached. If this machine is offline, download the URL elsewhere and place "
        f"the file at {target}"
    )


def _stream(url: str, tmp: Path, *, timeout: float, progress: bool | None, label: str) -> str:
    from tqdm import tqdm

    from topiceval import __version__

    request = urllib.request.Request(
        url, headers={"User-Agent": f"topiceval/{__version__}", "Accept-Encoding": "identity"}
    )
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s)/file only
            content_type = str(response.headers.get("Content-Type") or "").lower()
            if "html" in content_type:
                raise DownloadError(
                    f"{url}: the server sent an HTML page instead of a GMT file (Content-Type "
                    f"{content_type}: an error or login page?); nothing was cached"
                )
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            disable = (not sys.stderr.isatty()) if progress is None else not progress
            with open(tmp, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                disable=disable, leave=False,
            ) as bar:
                head = bytearray()  # the first bytes, checked before anything is kept
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    if head is not None:
                        head += chunk
                        if len(head) >= _SNIFF_BYTES:
                            _sniff(bytes(head), url)
                            head = None
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                if head:
                    _sniff(bytes(head), url)
                out.flush()
                os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        if exc.code in _RETRY_HTTP:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        hint = (" (no such file on the server: check the release and collection with "
                "`topiceval gene-sets list`)") if exc.code == 404 else ""
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}{hint}; nothing was cached") from None
    except urllib.error.URLError as exc:
        raise _Retry(f"no connection: {exc.reason}") from None
    except (TimeoutError, socket.timeout):
        raise _Retry(f"timed out after {timeout:g} s") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _Retry(f"connection broken: {type(exc).__name__} {exc}".rstrip()) from None
    if total is not None and received != total:
        raise _Retry(f"the transfer stopped early: {received} of {total} bytes")
    if received == 0:
        raise _Retry("the server sent an empty file")
    return digest.hexdigest()


# --------------------------------------------------------------------------- MSigDB files
def fetch(
    collection: str,
    version: str | None = None,
    *,
    cache: PathLike | None = None,
    base_url: str | None = None,
    download: bool = True,
    force: bool = False,
    replace_checksum: bool = False,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 1.0,
    progress: bool | None = None,
) -> Path:
    """Path of an MSigDB collection's GMT file in the cache, downloading it if needed.

    Parameters
    ----------
    collection, version
        Registry entry, e.g. ``("c2", "2024.1.Hs")`` or ``("msigdb:c2@2024.1.Hs", None)``; see
        :func:`topiceval.gene_sets.registry.resolve`.
    cache
        Cache folder; default :func:`cache_dir`.
    base_url
        Server; default ``$TOPICEVAL_MSIGDB_URL`` or the Broad Institute's.
    download
        If ``False``, never touch the network: a missing file raises
        :class:`~topiceval.errors.DownloadError` saying where to place it.
    force
        Download again even if cached (the new bytes must match the recorded sha256).
    replace_checksum
        Download again (implies ``force``) and accept new bytes, recording their sha256 (when
        MSigDB really replaced a file).
    timeout, retries, backoff, progress
        See :func:`download`.

    Returns
    -------
    Path
        The cached file, whose sha256 matches the manifest.

    Raises
    ------
    InputError
        Unknown collection or release (the message lists the known ones).
    DownloadError, ChecksumError
        See :func:`download`; also a cached file whose bytes no longer match the manifest.
    """
    entry = resolve(collection, version, base_url=base_url)
    force = force or replace_checksum
    root = cache_dir(cache)
    target = root / entry.cache_key
    with _file_lock(target.with_name(target.name + ".lock")):
        recorded = read_manifest(root).get(entry.cache_key)
        if target.exists() and not force:
            _verify_cached(root, entry, target, recorded)
            return target
        if not download:
            raise DownloadError(
                f"{entry.spec} is not in the cache and downloading is off: run `topiceval "
                f"gene-sets fetch {entry.collection} --version {entry.version}`, or download "
                f"{entry.url} and place the file at {target}"
            )
        expected = None if (recorded is None or replace_checksum) else recorded.get("sha256")
        digest = _download_entry(entry, target, expected, timeout, retries, backoff, progress)
        _record_file(root, entry, target, digest, "download")
    return target


def _record_file(root: Path, entry: MsigdbFile, target: Path, digest: str, origin: str) -> None:
    """Write the manifest entry of a cached file (checksum, size, source, release, origin)."""
    _record(root, entry.cache_key, {
        "sha256": digest,
        "size": target.stat().st_size,
        "url": entry.url,
        "collection": entry.collection,
        "release": entry.version,
        "species": entry.species,
        "recorded_at": _now(),
        "origin": origin,
    })


def _download_entry(
    entry: MsigdbFile, target: Path, expected: str | None,
    timeout: float, retries: int, backoff: float, progress: bool | None,
) -> str:
    try:
        return download(entry.url, target, timeout=timeout, retries=retries, backoff=backoff,
                        progress=progress, expected_sha256=expected)
    except ChecksumError as exc:
        raise ChecksumError(
            f"{exc}. To accept the new file: topiceval gene-sets fetch {entry.collection} "
            f"--version {entry.version} --force --replace-checksum"
        ) from None


def _verify_cached(root: Path, entry: MsigdbFile, target: Path, recorded: dict[str, Any] | None) -> None:
    """Compare a cached file with its manifest entry; record a hand-placed file on first use."""
    if recorded is None:
        with open(target, "rb") as handle:
            _sniff(handle.read(CHUNK), str(target))
        _record_file(root, entry, target, sha256_file(target), "placed in the cache by hand")
        return
    digest = sha256_file(target)
    if digest != recorded.get("sha256"):
        raise ChecksumError(
            f"the cached {target} has sha256 {digest}, but {recorded.get('sha256')} was recorded "
            f"on {recorded.get('recorded_at', 'first use')}: the file changed on disk. Fetch it "
            f"again: topiceval gene-sets fetch {entry.collection} --version {entry.version} --force"
        )
