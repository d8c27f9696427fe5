"""``topiceval gene-sets list / fetch / info`` against the local HTTP server."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from msigdb_server import MsigdbServer

from topiceval.cli import main
from topiceval.gene_sets import MSIGDB_RELEASES, SHIPPED


@pytest.fixture(scope="module")
def server(shared_data):
    srv = MsigdbServer(shared_data / "gene_sets")
    yield srv
    srv.close()


@pytest.fixture
def env(server, tmp_path, monkeypatch):
    server.reset()
    monkeypatch.setenv("TOPICEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TOPICEVAL_MSIGDB_URL", server.url)
    return tmp_path / "cache"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_registry_shipped_and_cache(env, capsys):
    code, out, err = run(["gene-sets", "list"], capsys)
    assert code == 0 and err == ""
    for version in MSIGDB_RELEASES:
        assert f"\n  {version} " in out
    for name in SHIPPED:
        assert f"\n  {name} " in out
    assert f"cache ({env}): empty" in out
    assert run(["gene-sets", "fetch", "h", "--version", "7.1", "--no-progress"], capsys)[0] == 0
    code, out, _ = run(["gene-sets", "list"], capsys)
    digest = hashlib.sha256((env / "msigdb/7.1/h.all.v7.1.symbols.gmt").read_bytes()).hexdigest()
    assert f"msigdb/7.1/h.all.v7.1.symbols.gmt  47.1 KiB  sha256 {digest[:12]}" in out


def test_list_one_release(env, capsys):
    code, out, _ = run(["gene-sets", "list", "--release", "2024.1.Mm"], capsys)
    assert code == 0
    assert "mh.all.v2024.1.Mm.symbols.gmt" in out and "msigdb.v2024.1.Mm.symbols.gmt" in out
    assert len([ln for ln in out.splitlines() if ".symbols.gmt" in ln]) == len(
        MSIGDB_RELEASES["2024.1.Mm"].collections)


def test_fetch_prints_what_it_cached(env, server, capsys):
    code, out, err = run(["gene-sets", "fetch", "msigdb:c2", "--version", "7.1", "--no-progress"], capsys)
    assert code == 0, err
    path = env / "msigdb" / "7.1" / "c2.all.v7.1.symbols.gmt"
    assert out.startswith("msigdb:c2@7.1: 5529 sets,")
    assert str(path) in out
    assert hashlib.sha256(path.read_bytes()).hexdigest() in out
    assert "--gene-sets msigdb:c2@7.1" in out
    # fetched again: nothing downloaded
    assert run(["gene-sets", "fetch", "c2@7.1", "--no-progress"], capsys)[0] == 0
    assert server.hits["/release/7.1/c2.all.v7.1.symbols.gmt"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fetch", "c2", "--version", "2031.1.Hs"], "unknown MSigDB release '2031.1.Hs'; known releases: 2025.1.Hs"),
        (["fetch", "c2", "--version", "2024.1.Mm"], "the mouse counterpart of c2 is m2"),
        (["fetch", "c2"], "give the MSigDB release"),
        (["fetch", "c3", "--version", "7.1", "--retries", "1"], "HTTP 404"),
        (["info", "msigdb:c2@2024.1.Hs"], "not in the cache and downloading is off: run `topiceval gene-sets fetch c2"),
        (["info", "nope.gmt"], "no such file"),
    ],
)
def test_errors_are_one_line(env, capsys, argv, message):
    code, out, err = run(["gene-sets", *argv], capsys)
    assert code == 2
    assert err.startswith("topiceval: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_html_served_instead_of_gmt(env, server, capsys):
    server.queue("/release/7.1/h.all.v7.1.symbols.gmt", "html")
    code, _, err = run(["gene-sets", "fetch", "h", "--version", "7.1", "--no-progress"], capsys)
    assert code == 2 and "HTML page instead of a GMT file" in err
    assert not (env / "msigdb" / "7.1" / "h.all.v7.1.symbols.gmt").exists()


def test_info_counts_and_coverage(env, capsys, tmp_path, shared_data, yan_genes):
    path = shared_data / "gene_sets" / "h.all.v7.1.symbols.gmt"
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(yan_genes) + "\n")
    code, out, err = run(["gene-sets", "info", path, "--genes", genes_file], capsys)
    assert code == 0, err
    lines = [ln.rstrip("\n").split("\t") for ln in path.read_text().splitlines() if ln.strip()]
    sizes = np.array([len(set(f[2:])) for f in lines])
    universe = {g.upper() for f in lines for g in f[2:]}
    covered = sum(g.upper() in universe for g in yan_genes)
    assert f"h.all.v7.1.symbols.gmt: {len(lines)} sets, {len(universe)} genes" in out
    assert f"min {sizes.min()}, 25% {np.percentile(sizes, 25):g}, median {np.median(sizes):g}" in out
    assert f"max {sizes.max()}, mean {sizes.mean():.1f}" in out
    assert f"[100, 500): {int(((sizes >= 100) & (sizes < 500)).sum())}" in out
    assert f"{covered} of {len(yan_genes)} genes ({covered / len(yan_genes):.1%})" in out
    assert "warning: only" in err  # below 50 % coverage
    assert "symbol-and-Ensembl-ID" not in out
    # a gene named with its Ensembl ID after the symbol is matched by the symbol, and said so
    known = [i for i, g in enumerate(yan_genes) if g.upper() in universe][:3]
    renamed = [f"{g}_ENSG{i:011d}" if i in known else g for i, g in enumerate(yan_genes)]
    genes_file.write_text("\n".join(renamed) + "\n")
    code, out, err = run(["gene-sets", "info", path, "--genes", genes_file], capsys)
    assert code == 0, err
    assert f"{covered} of {len(yan_genes)} genes" in out
    assert f"symbol-and-Ensembl-ID name: 3 ({renamed[known[0]]} -> {yan_genes[known[0]].upper()}" in out


def test_info_on_shipped_and_cached_collections(env, capsys, tmp_path):
    mouse = tmp_path / "mouse.txt"
    with gzip.open(SHIPPED["mouse_hallmark"].path, "rt") as handle:
        first = handle.readline().rstrip("\n").split("\t")
    mouse.write_text("\n".join(first[2:]) + "\n")
    code, out, err = run(["gene-sets", "info", "hallmark", "--genes", mouse], capsys)
    assert code == 0
    assert "collection hallmark, release MSigDB v7.1, species human" in out
    assert "look like mouse symbols" in err
    code, out, err = run(["gene-sets", "info", "hallmark", "--genes", mouse, "--species", "mouse"], capsys)
    assert code == 2 and "cross_species=True" in err
    code, out, err = run(["gene-sets", "info", "hallmark", "--genes", mouse, "--species", "mouse",
                          "--cross-species"], capsys)
    assert code == 0 and "look like" not in err
    assert run(["gene-sets", "fetch", "mh", "--version", "2024.1.Mm", "--no-progress"], capsys)[0] == 0
    code, out, err = run(["gene-sets", "info", "msigdb:mh@2024.1.Mm", "--genes", mouse], capsys)
    assert code == 0, err
    assert "msigdb:mh@2024.1.Mm: 50 sets" in out
    assert f"{len(set(first[2:]))} of {len(set(first[2:]))} genes (100.0%)" in out
