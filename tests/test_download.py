"""Download and cache of MSigDB files against a local HTTP server (never the internet).

The server (tests/msigdb_server.py) serves the real GMT files of ../shared/data/gene_sets in the
Broad Institute's layout and injects faults: truncated bodies, HTML pages, HTTP 404 / 500, slow
answers, changed bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from msigdb_server import ROUTES, MsigdbServer, changed_bytes, closed_port_url

from topiceval.errors import ChecksumError, DownloadError, InputError
from topiceval.gene_sets import cache_dir, fetch, load, read_gmt
from topiceval.gene_sets.download import _platform_cache_dir, cached_files, read_manifest

H71 = "/release/7.1/h.all.v7.1.symbols.gmt"
C271 = "/release/7.1/c2.all.v7.1.symbols.gmt"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(shared_data):
    srv = MsigdbServer(shared_data / "gene_sets", slow_seconds=1.0)
    yield srv
    srv.close()


@pytest.fixture
def srv(server):
    server.reset()
    return server


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fast(**kwargs):
    """Keyword arguments for quick tests: no progress bar, no back-off."""
    return {"progress": False, "backoff": 0.0, **kwargs}


def leftovers(folder: Path) -> list[str]:
    """Files left in the cache besides data and the manifest: temporary files, and lock files
    (a lock file lives only while its lock is held)."""
    if not folder.exists():
        return []
    return sorted(
        p.name for p in folder.rglob("*")
        if p.is_file() and p.name != "manifest.json"
        and not p.name.endswith(".symbols.gmt")
    )


def test_fetch_stores_the_served_bytes_and_records_them(srv, cache):
    path = fetch("h", "7.1", cache=cache, base_url=srv.url, **fast())
    body = srv.files[H71]
    assert path == cache / "msigdb" / "7.1" / "h.all.v7.1.symbols.gmt"
    assert path.read_bytes() == body
    entry = read_manifest(cache)["msigdb/7.1/h.all.v7.1.symbols.gmt"]
    assert entry["sha256"] == sha(body)
    assert entry["size"] == len(body)
    assert entry["url"] == srv.url + H71
    assert (entry["collection"], entry["release"], entry["species"]) == ("h", "7.1", "human")
    assert srv.hits[H71] == 1
    # A second fetch checks the cached file and does not download again.
    assert fetch("h", "7.1", cache=cache, base_url=srv.url, **fast()) == path
    assert srv.hits[H71] == 1
    assert [f.key for f in cached_files(cache)] == ["msigdb/7.1/h.all.v7.1.symbols.gmt"]


def test_load_msigdb_c2_is_the_file_it_downloaded(srv, cache, c2, shared_data):
    gs = load("msigdb:c2", version="7.1", cache=cache, base_url=srv.url, progress=False)
    assert list(gs.names) == list(c2.names)
    assert list(gs.genes) == list(c2.genes)
    assert (gs.membership != c2.membership).nnz == 0
    config = gs.config()
    assert config["sha256"] == sha((shared_data / "gene_sets" / "c2.all.v7.1.symbols.gmt").read_bytes())
    assert config["collection"] == "c2" and config["release"] == "7.1" and config["species"] == "human"
    assert config["url"] == srv.url + C271
    assert config["source"] == "msigdb:c2@7.1"
    # Size filters are applied and recorded; count checked against plain Python parsing.
    lines = [ln.rstrip("\n").split("\t") for ln in srv.files[C271].decode().splitlines() if ln.strip()]
    sizes = np.array([len({g.upper() for g in f[2:] if g}) for f in lines])
    filtered = load("msigdb:c2@7.1", cache=cache, base_url=srv.url, min_size=15, max_size=500, download=False)
    assert filtered.n_sets == int(((sizes >= 15) & (sizes <= 500)).sum())
    assert filtered.config()["filters"] == {"min_size": 15, "max_size": 500}
    assert filtered.config()["release"] == "7.1"
    assert srv.hits[C271] == 1


def test_truncated_body_is_retried_then_refused(srv, cache):
    srv.queue(H71, "truncate")
    path = fetch("h", "7.1", cache=cache, base_url=srv.url, retries=3, **fast())
    assert path.read_bytes() == srv.files[H71]
    assert srv.hits[H71] == 2

    srv.reset()
    other = cache.parent / "other"
    srv.queue(H71, "truncate", "truncate", "truncate")
    with pytest.raises(DownloadError, match=r"stopped early: \d+ of 48247 bytes; 3 attempts"):
        fetch("h", "7.1", cache=other, base_url=srv.url, retries=3, **fast())
    assert srv.hits[H71] == 3
    assert not (other / "msigdb" / "7.1" / "h.all.v7.1.symbols.gmt").exists()
    assert leftovers(other) == []
    assert read_manifest(other) == {}


def test_http_404_fails_at_once_with_nothing_cached(srv, cache):
    missing = "/release/7.1/c3.all.v7.1.symbols.gmt"
    with pytest.raises(DownloadError, match="HTTP 404.*no such file on the server.*nothing was cached"):
        fetch("c3", "7.1", cache=cache, base_url=srv.url, retries=3, **fast())
    assert srv.hits[missing] == 1  # a 404 is not retried
    assert cached_files(cache) == [] and leftovers(cache) == []


@pytest.mark.parametrize("fault", ["html", "html-as-text"])
def test_html_page_is_refused_and_nothing_cached(srv, cache, fault):
    srv.queue(H71, fault)
    with pytest.raises(DownloadError, match="HTML page instead of a GMT file.*nothing was cached"):
        fetch("h", "7.1", cache=cache, base_url=srv.url, retries=3, **fast())
    assert srv.hits[H71] == 1  # not retried: an error page does not turn into a GMT
    assert cached_files(cache) == [] and leftovers(cache) == [] and read_manifest(cache) == {}
    # The next, healthy answer is accepted.
    assert fetch("h", "7.1", cache=cache, base_url=srv.url, **fast()).read_bytes() == srv.files[H71]


def test_body_that_is_not_gmt_is_refused(srv, cache):
    srv.queue(H71, "not-gmt")
    with pytest.raises(DownloadError, match="not a GMT file.*first line has no tab"):
        fetch("h", "7.1", cache=cache, base_url=srv.url, **fast())
    assert cached_files(cache) == []


def test_server_error_is_retried(srv, cache):
    srv.queue(H71, "500", "500")
    path = fetch("h", "7.1", cache=cache, base_url=srv.url, retries=3, **fast())
    assert path.read_bytes() == srv.files[H71]
    assert srv.hits[H71] == 3


def test_timeout_is_retried_then_reported(srv, cache):
    srv.queue(H71, "slow", "slow")
    with pytest.raises(DownloadError, match=r"timed out after 0.2 s; 2 attempts"):
        fetch("h", "7.1", cache=cache, base_url=srv.url, timeout=0.2, retries=2, **fast())
    assert srv.hits[H71] == 2
    assert cached_files(cache) == [] and leftovers(cache) == []


def test_checksum_mismatch_on_refetch_keeps_the_cached_file(srv, cache):
    path = fetch("h", "7.1", cache=cache, base_url=srv.url, **fast())
    original = path.read_bytes()
    recorded = read_manifest(cache)
    srv.queue(H71, "changed")
    with pytest.raises(ChecksumError, match=f"but {sha(original)} was recorded when it was first fetched"):
        fetch("h", "7.1", cache=cache, base_url=srv.url, force=True, **fast())
    assert path.read_bytes() == original
    assert read_manifest(cache) == recorded
    assert leftovers(cache) == []
    # Accepting the new bytes is an explicit choice.
    srv.queue(H71, "changed")
    fetch("h", "7.1", cache=cache, base_url=srv.url, force=True, replace_checksum=True, **fast())
    new = changed_bytes(srv.files[H71])
    assert path.read_bytes() == new
    assert read_manifest(cache)["msigdb/7.1/h.all.v7.1.symbols.gmt"]["sha256"] == sha(new)


def test_cached_file_changed_on_disk_is_detected(srv, cache):
    path = fetch("h", "7.1", cache=cache, base_url=srv.url, **fast())
    path.write_bytes(path.read_bytes().replace(b"HALLMARK_HYPOXIA", b"HALLMARK_HYPOXIX"))
    with pytest.raises(ChecksumError, match="changed on disk.*--force"):
        load("msigdb:h@7.1", cache=cache, base_url=srv.url, download=False)
    # Re-fetching restores the recorded bytes.
    fetch("h", "7.1", cache=cache, base_url=srv.url, force=True, **fast())
    assert path.read_bytes() == srv.files[H71]
    assert "HALLMARK_HYPOXIA" in load("msigdb:h@7.1", cache=cache, download=False)


def test_concurrent_threads_download_once(srv, cache):
    srv.queue(C271, "slow")  # the first download is slow: the others must wait, not race
    results, errors = [], []

    def worker():
        try:
            results.append(fetch("c2", "7.1", cache=cache, base_url=srv.url, **fast()))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert results[0].read_bytes() == srv.files[C271]
    assert srv.hits[C271] == 1
    assert leftovers(cache) == []


def test_concurrent_processes_end_with_one_intact_file(srv, cache):
    env = {**os.environ, "TOPICEVAL_CACHE": str(cache), "TOPICEVAL_MSIGDB_URL": srv.url}
    code = (
        "from topiceval.gene_sets.download import fetch; "
        "print(fetch('msigdb:c2@7.1', progress=False, backoff=0.0))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    target = cache / "msigdb" / "7.1" / "c2.all.v7.1.symbols.gmt"
    assert {out.strip() for out, _ in outs} == {str(target)}
    assert target.read_bytes() == srv.files[C271]
    assert srv.hits[C271] == 1
    assert leftovers(cache) == []
    assert json.loads((cache / "manifest.json").read_text())["files"][
        "msigdb/7.1/c2.all.v7.1.symbols.gmt"]["sha256"] == sha(srv.files[C271])


def test_offline_error_says_which_file_to_place_where(cache, shared_data):
    url = closed_port_url()
    target = cache / "msigdb" / "7.1" / "h.all.v7.1.symbols.gmt"
    with pytest.raises(DownloadError) as info:
        fetch("msigdb:h", "7.1", cache=cache, base_url=url, retries=2, **fast())
    message = str(info.value)
    assert f"{url}/release/7.1/h.all.v7.1.symbols.gmt" in message
    assert f"place the file at {target}" in message
    assert "no connection" in message and "2 attempts" in message
    assert not target.exists() and leftovers(cache) == []
    # Doing what the message says works, offline; the file's sha256 is recorded on first use.
    source = shared_data / "gene_sets" / "h.all.v7.1.symbols.gmt"
    target.write_bytes(source.read_bytes())
    gs = load("msigdb:h", version="7.1", cache=cache, base_url=url, download=False)
    assert gs.n_sets == 50 and gs.config()["release"] == "7.1"
    entry = read_manifest(cache)["msigdb/7.1/h.all.v7.1.symbols.gmt"]
    assert entry["sha256"] == sha(source.read_bytes()) and entry["origin"] == "placed in the cache by hand"


def test_not_cached_and_download_off(cache):
    with pytest.raises(DownloadError, match="topiceval gene-sets fetch c2 --version 2024.1.Hs"):
        load("msigdb:c2@2024.1.Hs", cache=cache, download=False)


def test_html_placed_by_hand_is_refused_and_not_recorded(cache):
    target = cache / "msigdb" / "7.1" / "h.all.v7.1.symbols.gmt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"<html><body>Login required</body></html>")
    with pytest.raises(DownloadError, match="HTML page"):
        load("msigdb:h@7.1", cache=cache, download=False)
    assert read_manifest(cache) == {}


def test_unknown_collection_or_release_never_downloads(srv, cache):
    with pytest.raises(InputError, match="known releases: 2025.1.Hs"):
        load("msigdb:c2", version="2030.1.Hs", cache=cache, base_url=srv.url)
    with pytest.raises(InputError, match="its collections: h, c1, c2"):
        load("msigdb:c9", version="7.1", cache=cache, base_url=srv.url)
    assert sum(srv.hits.values()) == 0


def test_evaluate_accepts_an_inline_msigdb_spec(srv, cache, monkeypatch):
    from topiceval import evaluate
    from topiceval.examples import EXAMPLES
    from topiceval.io import read_outputs

    monkeypatch.setenv("TOPICEVAL_CACHE", str(cache))
    monkeypatch.setenv("TOPICEVAL_MSIGDB_URL", srv.url)
    fetch("h", "7.1", progress=False)
    outputs = read_outputs(EXAMPLES["yan_nmf"].topic_gene)
    with pytest.warns(UserWarning):  # low coverage of the yan genes by Hallmark
        result = evaluate(outputs, gene_sets="msigdb:h@7.1", metrics="tc")
    with pytest.warns(UserWarning):
        reference = evaluate(outputs, gene_sets=read_gmt(cache / "msigdb/7.1/h.all.v7.1.symbols.gmt"),
                             metrics="tc")
    assert result.scores["TC"] == reference.scores["TC"]
    assert result.config["gene_sets"]["release"] == "7.1"
    assert result.config["gene_sets"]["collection"] == "h"


def test_cache_dir_follows_platform_conventions(monkeypatch, tmp_path):
    monkeypatch.setenv("TOPICEVAL_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("TOPICEVAL_CACHE")
    home = Path.home()
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "topiceval"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    assert cache_dir() == home / ".cache" / "topiceval"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _platform_cache_dir() == home / ".cache" / "topiceval"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cache_dir() == home / "Library" / "Caches" / "topiceval"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert cache_dir() == tmp_path / "local" / "topiceval" / "Cache"


def test_all_routes_are_real_registry_files(srv):
    from topiceval.gene_sets.registry import resolve

    for route in ROUTES:
        _, _, version, filename = route.split("/")
        collection = filename.split(f".v{version}")[0].removesuffix(".all")
        entry = resolve(f"msigdb:{collection}@{version}", base_url=srv.url)
        assert entry.url == srv.url + route
