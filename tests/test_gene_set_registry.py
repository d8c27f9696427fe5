"""The MSigDB registry: releases, collections, file names and URLs in the Broad Institute layout."""

from __future__ import annotations

import pytest

from topiceval.errors import InputError
from topiceval.gene_sets import MSIGDB_RELEASES, releases, resolve
from topiceval.gene_sets.registry import DEFAULT_BASE_URL, normalize_species, parse_spec

BROAD = "https://data.broadinstitute.org/gsea-msigdb/msigdb/release"


@pytest.mark.parametrize(
    ("spec", "version", "url"),
    [
        ("msigdb:c2", "2024.1.Hs", f"{BROAD}/2024.1.Hs/c2.all.v2024.1.Hs.symbols.gmt"),
        ("msigdb:all", "2024.1.Hs", f"{BROAD}/2024.1.Hs/msigdb.v2024.1.Hs.symbols.gmt"),
        ("msigdb:h", "2023.2.Hs", f"{BROAD}/2023.2.Hs/h.all.v2023.2.Hs.symbols.gmt"),
        ("msigdb:c2.cp.reactome", "2024.1.Hs", f"{BROAD}/2024.1.Hs/c2.cp.reactome.v2024.1.Hs.symbols.gmt"),
        ("msigdb:c5.go.bp", "2025.1.Hs", f"{BROAD}/2025.1.Hs/c5.go.bp.v2025.1.Hs.symbols.gmt"),
        ("msigdb:mh", "2024.1.Mm", f"{BROAD}/2024.1.Mm/mh.all.v2024.1.Mm.symbols.gmt"),
        ("msigdb:m2.cp.reactome", "2024.1.Mm", f"{BROAD}/2024.1.Mm/m2.cp.reactome.v2024.1.Mm.symbols.gmt"),
        ("msigdb:all", "2024.1.Mm", f"{BROAD}/2024.1.Mm/msigdb.v2024.1.Mm.symbols.gmt"),
        ("msigdb:c2", "7.1", f"{BROAD}/7.1/c2.all.v7.1.symbols.gmt"),
        ("msigdb:h", "7.5.1", f"{BROAD}/7.5.1/h.all.v7.5.1.symbols.gmt"),
        ("msigdb:c5.bp", "7.1", f"{BROAD}/7.1/c5.bp.v7.1.symbols.gmt"),
    ],
)
def test_urls_follow_the_broad_layout(spec, version, url, monkeypatch):
    monkeypatch.delenv("TOPICEVAL_MSIGDB_URL", raising=False)
    entry = resolve(spec, version)
    assert entry.url == url
    assert entry.cache_key == f"msigdb/{version}/{url.rsplit('/', 1)[1]}"
    assert DEFAULT_BASE_URL + "/release" == BROAD


def test_spec_spellings():
    assert parse_spec("msigdb:c2") == ("c2", None)
    assert parse_spec("msigdb:c2@2024.1.Hs") == ("c2", "2024.1.Hs")
    assert parse_spec("msigdb:C2.ALL@2024.1.Hs") == ("c2", "2024.1.Hs")
    assert parse_spec("msigdb:msigdb@7.1") == ("all", "7.1")
    assert parse_spec("c2.cp.reactome") == ("c2.cp.reactome", None)
    assert resolve("msigdb:c2", "v2024.1.hs").version == "2024.1.Hs"
    assert resolve("msigdb:c2@2024.1.Hs").filename == resolve("msigdb:c2.all", "2024.1.Hs").filename
    with pytest.raises(InputError, match="cannot read gene-set spec"):
        parse_spec("msigdb:c2 @ 2024")


def test_release_must_be_given_once():
    with pytest.raises(InputError, match="give the MSigDB release.*known releases: 2025.1.Hs, 2025.1.Mm"):
        resolve("msigdb:c2")
    with pytest.raises(InputError, match="names release 2024.1.Hs but version='2023.2.Hs'"):
        resolve("msigdb:c2@2024.1.Hs", "2023.2.Hs")


def test_unknown_release_or_collection_lists_the_known_ones():
    with pytest.raises(InputError) as info:
        resolve("msigdb:c2", "2024.2.Hs")
    assert all(v in str(info.value) for v in MSIGDB_RELEASES)
    with pytest.raises(InputError) as info:
        resolve("msigdb:c9", "2024.1.Hs")
    message = str(info.value)
    assert "has no collection 'c9'" in message
    assert all(c in message for c in MSIGDB_RELEASES["2024.1.Hs"].collections)
    # A human collection asked from a mouse release points at its mouse counterpart.
    with pytest.raises(InputError, match="the mouse counterpart of c2 is m2"):
        resolve("msigdb:c2", "2024.1.Mm")
    with pytest.raises(InputError, match="mouse ones are in the .Mm releases"):
        resolve("msigdb:m2", "2024.1.Hs")
    # KEGG was split in 2023.2: the old name is not offered by later releases.
    with pytest.raises(InputError, match="c2.cp.kegg_legacy"):
        resolve("msigdb:c2.cp.kegg", "2024.1.Hs")
    assert resolve("msigdb:c2.cp.kegg", "2023.1.Hs").filename == "c2.cp.kegg.v2023.1.Hs.symbols.gmt"


def test_every_release_is_consistent():
    for version, release in MSIGDB_RELEASES.items():
        assert release.version == version
        names = [release.filename(c) for c in release.collections]
        assert len(set(names)) == len(names), version
        assert "all" in release.collections
        if release.species == "human":
            assert {"h", "c1", "c2", "c3", "c4", "c5", "c6", "c7"} <= set(release.collections)
            assert not any(c.startswith("m") for c in release.collections)
        else:
            assert version.endswith(".Mm")
            assert {"mh", "m1", "m2", "m3", "m5", "m8"} <= set(release.collections)
            assert not any(c.startswith(("c", "h")) for c in release.collections)
        for collection in release.collections:
            top = collection.split(".")[0]
            assert top in release.collections, (version, collection)
        suffix = version.split(".")[-1]
        assert suffix in {"Hs", "Mm"} or version.startswith("7."), version
    assert releases("mouse") == [v for v in MSIGDB_RELEASES if v.endswith(".Mm")]
    assert releases("Hs")[0] == "2025.1.Hs" and "7.1" in releases("human")


def test_base_url_override(monkeypatch):
    monkeypatch.setenv("TOPICEVAL_MSIGDB_URL", "http://127.0.0.1:9/mirror/")
    assert resolve("msigdb:h", "7.1").url == "http://127.0.0.1:9/mirror/release/7.1/h.all.v7.1.symbols.gmt"
    assert resolve("msigdb:h", "7.1", base_url="file:///srv/msigdb").url == (
        "file:///srv/msigdb/release/7.1/h.all.v7.1.symbols.gmt"
    )


def test_species_names():
    assert [normalize_species(s) for s in ("human", "Hs", "Homo sapiens", "MOUSE", "mm")] == [
        "human", "human", "human", "mouse", "mouse"]
    with pytest.raises(InputError, match="unknown species 'rat'"):
        normalize_species("rat")
