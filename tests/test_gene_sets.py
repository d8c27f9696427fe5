"""GMT reading and the GeneSets membership matrix, checked against plain-Python parsing."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topiceval.errors import GeneSetFormatError, InputError
from topiceval.gene_sets import SHIPPED, GeneSets, load, read_gmt


def write(tmp_path: Path, text: str, name: str = "sets.gmt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def python_pairs(path: Path) -> set[tuple[str, str]]:
    """Obviously-correct reading: every (set, upper-cased gene) pair of a plain GMT."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    pairs = set()
    with opener(path, "rt") as handle:
        for line in handle:
            if line.strip():
                fields = line.rstrip("\n").split("\t")
                pairs.update((fields[0], g.upper()) for g in fields[2:] if g)
    return pairs


def matrix_pairs(gs: GeneSets) -> set[tuple[str, str]]:
    rows, cols = gs.membership.nonzero()
    return set(zip(gs.names[rows], gs.genes[cols], strict=True))


def test_hand_written_gmt(tmp_path):
    path = write(tmp_path, "A\tdesc a\tg1\tG2\tg3\n\nB\t\tg2\tg4\r\nC set with spaces\tx\tG1\tg1\n")
    gs = read_gmt(path)
    assert list(gs.names) == ["A", "B", "C set with spaces"]
    assert gs.descriptions == ["desc a", "", "x"]
    assert gs["A"] == ["G1", "G2", "G3"]
    assert gs["B"] == ["G2", "G4"]
    assert gs["C set with spaces"] == ["G1"]  # repeated gene kept once after upper-casing
    assert list(gs.sizes) == [3, 2, 1]
    assert gs.membership.shape == (3, 4)
    assert gs.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert gs.config()["case"] == "upper"


def test_exact_case_keeps_symbols(tmp_path):
    gs = read_gmt(write(tmp_path, "A\t\tActb\tACTB\n"), case="exact")
    assert sorted(gs["A"]) == ["ACTB", "Actb"]
    assert list(gs.gene_index(["ACTB", "actb"])) == [gs.genes.get_loc("ACTB"), -1]
    upper = read_gmt(write(tmp_path, "A\t\tActb\n", "u.gmt"))
    assert list(upper.gene_index(["actb", "Other"])) == [0, -1]


def test_enrichr_weights_and_gzip(tmp_path, shared_data):
    path = write(tmp_path, "Term one\t\tABC1,1.0\tABC2,0.5\tABC3\n")
    assert read_gmt(path)["Term one"] == ["ABC1", "ABC2", "ABC3"]
    gz = tmp_path / "sets.gmt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_gmt(gz).to_dict() == read_gmt(path).to_dict()
    assert read_gmt(gz).sha256 != read_gmt(path).sha256
    assert read_gmt(gz).content_sha256 == read_gmt(path).content_sha256
    # The real Enrichr library carries weighted entries too.
    enrichr = read_gmt(shared_data / "gene_sets" / "enrichr.GO_Biological_Process_2023.gmt")
    assert not any("," in g for g in enrichr.genes)
    assert enrichr.n_sets == 5407


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A\t\tg1\nB\t\tg2\nA\t\tg3\n", "line 3: duplicate gene-set name 'A' (first at line 1)"),
        ("A\t\tg1\nB g2 g3\n", "line 2: no tab found"),
        ("<!DOCTYPE html><html><body>Not found</body></html>\n", "HTML"),
        ("\n\n", "no gene sets found"),
        ("\tdesc\tg1\n", "line 1: empty gene-set name"),
        ("A\t\t\nB\t\t\n", "no gene set has any gene"),
    ],
)
def test_malformed_gmt(tmp_path, text, message):
    with pytest.raises(GeneSetFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_gmt(write(tmp_path, text))


def test_not_text_and_corrupt_gzip(tmp_path):
    binary = tmp_path / "b.gmt"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    with pytest.raises(GeneSetFormatError, match="not UTF-8"):
        read_gmt(binary)
    corrupt = tmp_path / "c.gmt.gz"
    corrupt.write_bytes(gzip.compress(b"A\t\tg1\n" * 100)[:30])
    with pytest.raises(GeneSetFormatError, match="corrupt gzip"):
        read_gmt(corrupt)
    with pytest.raises(InputError, match="not found"):
        read_gmt(tmp_path / "missing.gmt")


def test_empty_set_is_skipped_with_warning(tmp_path):
    with pytest.warns(UserWarning, match="1 gene set"):
        gs = read_gmt(write(tmp_path, "A\t\tg1\nEMPTY\tnothing\n"))
    assert list(gs.names) == ["A"]


@pytest.mark.parametrize(
    ("file", "n_sets", "n_genes"),
    [
        ("h.all.v7.1.symbols.gmt", 50, 4383),
        ("c2.cp.reactome.v2022.1.Hs.symbols.gmt", 1635, 11013),
        ("c2.all.v7.1.symbols.gmt", 5529, 20738),
    ],
)
def test_real_collections_match_plain_python(shared_data, file, n_sets, n_genes):
    path = shared_data / "gene_sets" / file
    gs = read_gmt(path)
    assert (gs.n_sets, gs.n_genes) == (n_sets, n_genes)
    assert matrix_pairs(gs) == python_pairs(path)
    assert gs.membership.nnz == len(python_pairs(path))


def test_shipped_collections_are_the_shared_files(full_shared_data):
    for name, collection in SHIPPED.items():
        assert hashlib.sha256(collection.path.read_bytes()).hexdigest() == collection.sha256
        original = full_shared_data / "gene_sets" / collection.file.removesuffix(".gz")
        assert load(name).to_dict() == read_gmt(original).to_dict()
        assert load(name).source == name


def test_load_variants(tmp_path, hallmark):
    assert load(hallmark) is hallmark
    from_dict = load({"S1": ["a", "B"], "S2": ["b"]})
    assert from_dict.to_dict() == {"S1": ["A", "B"], "S2": ["B"]}
    assert from_dict.source == "dict"
    assert len(from_dict.sha256) == 64
    # Content hash ignores order.
    assert load({"S2": ["B"], "S1": ["B", "A"]}).sha256 == from_dict.sha256
    with pytest.raises(InputError, match="not a shipped collection.*hallmark"):
        load("no_such_collection")
    filtered = load("hallmark", min_size=150, max_size=200)
    assert filtered.sizes.min() >= 150 and filtered.sizes.max() <= 200
    assert 0 < filtered.n_sets < 50
    assert filtered.config()["filters"] == {"min_size": 150, "max_size": 200}
    # Filtering keeps memberships intact.
    for name in filtered.names:
        assert filtered[name] == hallmark[name]


def test_write_gmt_round_trip(tmp_path, reactome):
    out = tmp_path / "copy.gmt"
    reactome.write_gmt(out)
    assert read_gmt(out).to_dict() == reactome.to_dict()


def test_whole_symbol_matching():
    gs = GeneSets.from_dict({"MHC": ["HLA-C", "HLA-A"], "HOX": ["NKX2-1", "NKX2"]})
    index = gs.gene_index(["HLA-C", "HLA", "NKX2-1", "nkx2", "C"])
    assert [gs.genes[i] if i >= 0 else None for i in index] == ["HLA-C", None, "NKX2-1", "NKX2", None]


def test_coverage(yan_genes, reactome):
    expected = {g.upper() for g in yan_genes} & set(reactome.genes)
    with pytest.warns(UserWarning, match=r"only 2012 of 4656 model genes \(43%\)"):
        coverage = reactome.coverage(yan_genes)
    assert coverage.n_covered == len(expected) == 2012
    assert coverage.fraction == pytest.approx(len(expected) / len(yan_genes))
    assert set(coverage.missing) == {g for g in yan_genes if g.upper() not in expected}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reactome.coverage(list(reactome.genes[:10])).fraction == 1.0
    with pytest.raises(InputError, match="none of the 3 model genes"):
        reactome.coverage(["ENSG00000141510", "ENSG00000012048", "ENSG00000139618"])


def test_case_collision_warns():
    gs = GeneSets.from_dict({"S": ["ACTB"]})
    with pytest.warns(UserWarning, match="coincide"):
        index = gs.gene_index(["Actb", "ACTB"])
    assert np.array_equal(index, [0, 0])


def test_combine_is_the_union_of_the_parts(hallmark, reactome):
    from topiceval.gene_sets import combine

    both = combine([hallmark, reactome])
    assert both.n_sets == hallmark.n_sets + reactome.n_sets
    assert list(both.names) == [*hallmark.names, *reactome.names]
    # every (set, gene) membership of each part, and nothing else (checked on plain pairs)
    assert matrix_pairs(both) == matrix_pairs(hallmark) | matrix_pairs(reactome)
    assert set(both.genes) == set(hallmark.genes) | set(reactome.genes)
    assert both.source == "hallmark + reactome"
    assert both.sha256 == both.content_sha256 != hallmark.content_sha256
    assert [p["content_sha256"] for p in both.provenance["parts"]] == [hallmark.content_sha256, reactome.content_sha256]
    # the same union built by hand from the two mappings hashes alike
    assert load({**hallmark.to_dict(), **reactome.to_dict()}).content_sha256 == both.content_sha256
    # load() reads a list of specs as their union, then applies the filters and the species rule
    loaded = load(["hallmark", "reactome"], min_size=100, species="human")
    assert loaded.to_dict() == both.filter(min_size=100).to_dict()
    assert loaded.config()["filters"] == {"min_size": 100}
    assert loaded.species == "human" and loaded.config()["species_match"]["rule"] == "same species"
    assert combine([hallmark]) is hallmark


def test_overlap_matches_a_pairwise_jaccard_by_hand(hallmark, reactome):
    from topiceval.gene_sets import overlap

    # a prior made of 3 Hallmark sets as they are, one trimmed to 60 %, one unrelated set
    names = list(hallmark.names[:4])
    trimmed = hallmark[names[3]][: int(0.6 * len(hallmark[names[3]]))]
    prior = load({"copy_a": hallmark[names[0]], "copy_b": hallmark[names[1]], "copy_c": hallmark[names[2]],
                  "trimmed": trimmed, "other": ["NOT_A_GENE_1", "NOT_A_GENE_2", hallmark[names[0]][0]]})
    result = overlap(prior, hallmark)
    assert (result["n_sets"], result["identical"], result["similar"]) == (5, 3, 4)
    assert [(m[1], m[2]) for m in result["matches"][:3]] == [(n, 1.0) for n in names[:3]]  # ties in prior order
    assert result["matches"][3][1] == names[3] and result["matches"][3][2] == pytest.approx(len(trimmed) / len(hallmark[names[3]]))
    # every best Jaccard equals the brute-force maximum over the pairs (real collections)
    result = overlap(reactome, hallmark, min_jaccard=0.3)
    sets = {n: set(hallmark[n]) for n in hallmark.names}
    brute = np.array([max(len(set(reactome[n]) & b) / len(set(reactome[n]) | b) for b in sets.values())
                      for n in reactome.names])
    np.testing.assert_allclose(result["best"], brute, rtol=1e-12)
    assert result["similar"] == int(np.sum(brute >= 0.3)) and result["identical"] == int(np.sum(brute == 1.0))
    assert overlap(load({"x": ["NOT_A_GENE"]}), hallmark)["similar"] == 0
    with pytest.raises(InputError, match="min_jaccard"):
        overlap(prior, hallmark, min_jaccard=0)


def test_combine_refuses_ambiguous_unions(hallmark):
    from topiceval.gene_sets import combine

    with pytest.raises(InputError, match="in more than one collection: HALLMARK_"):
        combine([hallmark, hallmark])
    with pytest.raises(InputError, match="different species"):
        combine([hallmark, load("mouse_hallmark")])
    exact = load({"S1": ["Actb"]}, case="exact")
    with pytest.raises(InputError, match="different case rules"):
        combine([load({"S2": ["ACTB"]}), exact])
    with pytest.raises(InputError, match="filtered differently"):
        combine([hallmark.filter(min_size=100), load({"S2": ["ACTB"]})])
    with pytest.raises(InputError, match="empty list"):
        load([])


# ---------------------------------------------------------------- symbol-and-Ensembl-ID names
def test_symbol_and_ensembl_id_names_match_by_symbol():
    gs = GeneSets.from_dict({"S": ["CCL5", "PTPRC", "ACTB", "NKX2-1"], "T": ["HLA-A", "ABC_ENSG00000000001"]})
    names = ["CCL5_ENSG00000161570", "ENSG00000081237|PTPRC", "Actb_ENSMUSG00000029580.3", "HLA-A|ENSG00000206503",
             "ABC_ENSG00000000001", "NKX2-1", "CCL5-1", "CCL5.1", "ENSG00000161570", "XYZ_ENSG00000000002",
             "CCL5_ENSG161570"]
    index = gs.gene_index(names)
    expected = ["CCL5", "PTPRC", "ACTB", "HLA-A", "ABC_ENSG00000000001", "NKX2-1", None, None, None, None, None]
    assert [gs.genes[i] if i >= 0 else None for i in index] == expected
    # a name found as written is never rewritten; only the rule's matches are aliases
    assert gs.symbol_aliases(names) == {"CCL5_ENSG00000161570": "CCL5", "ENSG00000081237|PTPRC": "PTPRC",
                                        "Actb_ENSMUSG00000029580.3": "ACTB", "HLA-A|ENSG00000206503": "HLA-A"}
    coverage = gs.coverage(names, warn=False)
    assert coverage.n_covered == 6 and coverage.aliased == gs.symbol_aliases(names)
    assert coverage.as_dict()["n_aliased"] == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # four distinct symbols: no collision
        gs.gene_index(names[:4])
    exact = GeneSets.from_dict({"S": ["CCL5"]}, case="exact")
    assert list(exact.gene_index(["CCL5_ENSG00000161570", "ccl5_ENSG00000161570"])) == [0, -1]


def test_symbol_and_id_collision_warns():
    gs = GeneSets.from_dict({"S": ["CCL5"]})
    with pytest.warns(UserWarning, match="symbol-and-ID rule"):
        index = gs.gene_index(["CCL5", "CCL5_ENSG00000161570"])
    assert list(index) == [0, 0]


def test_kang_pbmc_genes_named_with_their_ensembl_id_are_covered(shared_data, hallmark):
    """kang_pbmc names 91 genes SYMBOL_ENSG... (scater's uniquifyFeatureNames); checked against
    plain Python: strip the ID by hand and look the symbol up."""
    import anndata as ad

    genes = [str(g) for g in ad.read_h5ad(shared_data / "datasets/kang_pbmc/kang_pbmc.h5ad", backed="r").var_names]
    known = set(hallmark.genes)
    by_hand = {g: g.split("_ENSG")[0].upper() for g in genes if "_ENSG" in g and g.upper() not in known}
    by_hand = {g: s for g, s in by_hand.items() if s in known}
    assert len(by_hand) > 20  # CCL5, PTPRC, HLA-A, ... : the rule matters on this dataset
    coverage = hallmark.coverage(genes, warn=False)
    assert coverage.aliased == by_hand
    assert coverage.n_covered == sum(g.upper() in known for g in genes) + len(by_hand)


def test_scores_are_the_same_under_symbol_and_id_names(reactome):
    """Renaming genes SYMBOL_ENSG... changes no score: every metric matches through gene_index."""
    from topiceval import evaluate
    from topiceval.examples import EXAMPLES
    from topiceval.io import read_outputs

    ex = EXAMPLES["yan_nmf"]
    outputs = read_outputs(ex.topic_gene, cell_topic=ex.cell_topic, name="yan_nmf")
    top = np.argsort(-outputs.topic_gene, axis=1)[:, :10]
    renamed = list(outputs.gene_names)
    for k, j in enumerate(np.unique(top)[:40]):
        renamed[j] = f"{renamed[j]}_ENSG{k:011d}" if k % 2 else f"ENSG{k:011d}|{renamed[j]}"
    other = dataclasses.replace(outputs, gene_names=np.asarray(renamed, dtype=object))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = evaluate(outputs, gene_sets=reactome, metrics="tc,ora")
        suffixed = evaluate(other, gene_sets=reactome, metrics="tc,ora")
    pd.testing.assert_series_equal(plain.scores, suffixed.scores)
    assert suffixed.config["coverage"]["n_covered"] == plain.config["coverage"]["n_covered"]
    assert suffixed.config["coverage"]["n_aliased"] > 0 == plain.config["coverage"]["n_aliased"]
