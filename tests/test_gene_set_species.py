"""Species: mouse genes match mouse sets; crossing species is explicit, recorded, never silent."""

from __future__ import annotations

import gzip
import warnings

import pytest
from msigdb_server import MsigdbServer

from topiceval.errors import InputError
from topiceval.gene_sets import CROSS_SPECIES_RULE, SHIPPED, guess_species, load
from topiceval.gene_sets.species import mouse_style_fraction


def raw_genes(path) -> list[str]:
    """Distinct symbols of a GMT file as written (plain Python)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    genes: dict[str, None] = {}
    with opener(path, "rt") as handle:
        for line in handle:
            for gene in line.rstrip("\n").split("\t")[2:]:
                if gene:
                    genes[gene] = None
    return list(genes)


@pytest.fixture(scope="module")
def human_genes():
    return raw_genes(SHIPPED["hallmark"].path)


@pytest.fixture(scope="module")
def mouse_genes():
    return raw_genes(SHIPPED["mouse_hallmark"].path)


def species_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "look like" in str(w.message)]


def test_symbol_style_guess(yan_genes, human_genes, mouse_genes):
    assert mouse_style_fraction(["Actb", "ACTB", "C1orf112", "123"]) == pytest.approx(1 / 3)
    assert guess_species(yan_genes) == "human"
    assert guess_species(human_genes) == "human"
    assert guess_species(mouse_genes) == "mouse"
    assert guess_species([g.upper() for g in mouse_genes]) == "human"  # upper-cased mouse reads as human
    assert guess_species(human_genes[:50] + mouse_genes[:50]) is None
    assert guess_species(["1", "2"]) is None


def test_cross_species_needs_the_explicit_option(human_genes, mouse_genes):
    with pytest.raises(InputError, match="holds mouse gene symbols but the model is human.*cross_species=True"):
        load("mouse_hallmark", species="human")
    gs = load("mouse_hallmark", species="human", cross_species=True)
    match = gs.config()["species_match"]
    assert match == {"model_species": "human", "gene_set_species": "mouse", "cross_species": True,
                     "rule": CROSS_SPECIES_RULE}
    assert gs.config()["species"] == "mouse"
    # The rule: a human gene matches when its symbol equals a mouse symbol up to case.
    mouse_upper = {g.upper() for g in mouse_genes}
    expected = sum(g.upper() in mouse_upper for g in human_genes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coverage = gs.coverage(human_genes)
    assert coverage.n_covered == expected
    assert 0 < expected < len(human_genes)  # orthologs with different symbols are lost
    assert species_warnings(caught) == []


def test_undeclared_cross_species_warns(mouse_genes):
    with pytest.warns(UserWarning, match="look like mouse symbols.*holds human symbols.*cross_species=True"):
        load("hallmark").coverage(mouse_genes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load("hallmark", species="mouse", cross_species=True).coverage(mouse_genes)
        load("mouse_hallmark", species="mouse").coverage(mouse_genes)
        load("mouse_hallmark").coverage(mouse_genes)  # same species: nothing to say
    assert species_warnings(caught) == []


def test_same_species_and_unknown_species(tmp_path, mouse_genes):
    gs = load("mouse_hallmark", species="Mm")
    assert gs.config()["species_match"]["rule"] == "same species"
    assert gs.config()["species_match"]["cross_species"] is False
    assert gs.coverage(mouse_genes, warn=False).fraction == 1.0
    path = tmp_path / "mine.gmt"
    path.write_text("A\t\tActb\tGapdh\n")
    mine = load(path, species="mouse")
    assert mine.config()["species"] is None
    assert mine.config()["species_match"]["gene_set_species"] is None
    assert load(path).config()["species_match"] is None


def test_bad_species_options():
    with pytest.raises(InputError, match="cross_species=True needs species="):
        load("hallmark", cross_species=True)
    with pytest.raises(InputError, match="case='upper'"):
        load("mouse_hallmark", case="exact", species="human", cross_species=True)
    with pytest.raises(InputError, match="unknown species"):
        load("hallmark", species="zebrafish")


def test_registry_collections_know_their_species(shared_data, tmp_path):
    server = MsigdbServer(shared_data / "gene_sets")
    try:
        kwargs = {"cache": tmp_path, "base_url": server.url, "progress": False}
        mouse = load("msigdb:mh@2024.1.Mm", species="mouse", **kwargs)
        assert mouse.config()["species"] == "mouse" and mouse.config()["release"] == "2024.1.Mm"
        with pytest.raises(InputError, match="msigdb:mh@2024.1.Mm holds mouse gene symbols"):
            load("msigdb:mh@2024.1.Mm", species="human", **kwargs)
        human = load("msigdb:c2.cp.reactome@2022.1.Hs", species="human", **kwargs)
        assert human.config()["species"] == "human"
        shipped = load("reactome")  # the same file, shipped gzip-compressed
        assert list(human.names) == list(shipped.names)
        assert (human.membership != shipped.membership).nnz == 0
    finally:
        server.close()


def test_evaluate_records_the_cross_species_rule():
    from topiceval import evaluate
    from topiceval.examples import EXAMPLES
    from topiceval.io import read_outputs

    outputs = read_outputs(EXAMPLES["yan_nmf"].topic_gene)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crossed = evaluate(outputs, gene_sets=load("mouse_hallmark", species="human", cross_species=True),
                           metrics="tc")
        plain = evaluate(outputs, gene_sets="mouse_hallmark", metrics="tc")
    assert crossed.config["gene_sets"]["species_match"]["rule"] == CROSS_SPECIES_RULE
    assert plain.config["gene_sets"]["species_match"] is None
    assert crossed.scores["TC"] == plain.scores["TC"]  # the rule is the case-insensitive match
