"""d-scIGM's hierarchical prior: reading the authors' prior folder safely, its masks, training on it.

The authors' files (their repository's ``datasets/``) are not needed: the tests write a small
hierarchy in the same form (a dict of levels, a list of child dicts with some child lists as numpy
object arrays, as their Python 2 edge pickle holds them; a tab-separated STRING file).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from topiceval.adapters import dscigm
from topiceval.adapters.registry import TrainParams
from topiceval.models.dscigm import DSCIGM, DSCIGMConfig, TrainingOptions, read_hierarchical_prior
from topiceval.models.dscigm.prior import (
    HIERARCHY_EDGES_FILE,
    HIERARCHY_LEVELS_FILE,
    STRING_LINKS_FILE,
)

from topiceval.errors import InputError

# level 1 (top) .. level 4 (gene nodes); children[i] maps level i+1 nodes to level i+2 nodes
LEVELS = {1: ["TOP_A", "TOP_B"], 2: ["MID_A", "MID_B", "MID_C"], 3: ["P1", "P2", "P3", "P4"],
          4: ["G1", "G2", "G3", "G4", "G5", "G6"]}
CHILDREN = [
    {"root": ["TOP_A", "TOP_B"]},
    {"TOP_A": ["MID_A", "MID_B"], "TOP_B": ["MID_C", "NOT_A_NODE"]},
    {"MID_A": ["P1"], "MID_B": ["P2", "P3"], "MID_C": ["P3", "P4"]},
    {"P1": ["G1", "G2"], "P2": ["G2", "G3"], "P3": ["G4"], "P4": ["G5", "G6", "G1"]},
]
LINKS = [("G2", "X1"), ("X2", "G6"), ("G3", "G4")]
GENES = ["G1", "X1", "G3", "X2", "X3", "G5"]  # the model's input genes


def _write_prior(folder: Path, protocol: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    children = [dict(level) for level in CHILDREN]
    # as the authors' edge file: some child lists pickled as 1-d numpy object arrays
    children[3]["P4"] = np.array(children[3]["P4"], dtype=object)
    children[2]["MID_B"] = np.array(children[2]["MID_B"], dtype=object)
    (folder / HIERARCHY_LEVELS_FILE).write_bytes(pickle.dumps(LEVELS, protocol=4))
    (folder / HIERARCHY_EDGES_FILE).write_bytes(pickle.dumps(children, protocol=protocol))
    (folder / STRING_LINKS_FILE).write_text("".join(f"{a}\t{b}\n" for a, b in LINKS))
    return folder


def _expected_masks(string_links: bool) -> list[np.ndarray]:
    """The connections written out by hand from LEVELS, CHILDREN, LINKS and GENES."""
    nodes = LEVELS[4]
    gene_layer = np.zeros((len(GENES), len(nodes)), dtype=bool)
    same = {"G1": ["G1"], "G3": ["G3"], "G5": ["G5"]}
    linked = {"X1": ["G2"], "X2": ["G6"], "G3": ["G4"]} if string_links else {}
    for g, gene in enumerate(GENES):
        for node in same.get(gene, []) + linked.get(gene, []):
            gene_layer[g, nodes.index(node)] = True
    out = [gene_layer]
    for level in (3, 2, 1):  # children of level `level` nodes are in level + 1
        below, above = LEVELS[level + 1], LEVELS[level]
        m = np.zeros((len(below), len(above)), dtype=bool)
        for p, parent in enumerate(above):
            for child in CHILDREN[level][parent]:
                if child in below:
                    m[below.index(child), p] = True
        out.append(m)
    return out


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_hierarchy_masks_match_the_files(tmp_path: Path, protocol: int):
    tree = read_hierarchical_prior(_write_prior(tmp_path, protocol))
    assert tree.sizes == (6, 4, 3, 2)
    for string_links in (True, False):
        tree = read_hierarchical_prior(tmp_path, string_links=string_links)
        masks = tree.masks(GENES)
        expected = _expected_masks(string_links)
        assert [m.shape for m in masks] == [(6, 6), (6, 4), (4, 3), (3, 2)]
        for got, want in zip(masks, expected, strict=True):
            np.testing.assert_array_equal(got.toarray(), want)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-marker",))


@pytest.mark.parametrize("payload", [
    _Exploit(),
    [{"P1": ["G1"]}, np.float64(1.5)],  # a numpy scalar: a global other than array reconstruction
    [{}, {"P1": np.arange(3)}],  # a numeric array: not an array of names
    {1: ["A"], 2: ["B"], 3: Path("x")},  # a class the reader does not build
])
def test_hierarchy_reader_refuses_other_pickles(tmp_path: Path, monkeypatch, payload):
    folder = _write_prior(tmp_path / "prior")
    (folder / HIERARCHY_EDGES_FILE).write_bytes(pickle.dumps(payload, protocol=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="not a prior-knowledge pickle"):
        read_hierarchical_prior(folder)
    assert not (tmp_path / "pwned-marker").exists()


def test_hierarchy_reader_clear_errors(tmp_path: Path):
    folder = _write_prior(tmp_path / "prior")
    (folder / STRING_LINKS_FILE).unlink()
    with pytest.raises(InputError, match="prior_string=false"):
        read_hierarchical_prior(folder)
    assert read_hierarchical_prior(folder, string_links=False).links == frozenset()
    (folder / HIERARCHY_LEVELS_FILE).write_bytes(pickle.dumps([["A"], ["B"]]))
    with pytest.raises(InputError, match="dict of levels"):
        read_hierarchical_prior(folder, string_links=False)
    with pytest.raises(InputError, match="does not exist"):
        read_hierarchical_prior(tmp_path / "absent")


def test_fully_masked_encoder_keeps_its_connections(tmp_path: Path):
    """Every encoder layer connects only what the hierarchy connects, after training and a reload."""
    tree = read_hierarchical_prior(_write_prior(tmp_path / "prior"))
    masks = tree.masks(GENES)
    config = DSCIGMConfig(n_genes=len(GENES), topic_sizes=(3, 3, 2, 2), hidden_sizes=tree.sizes,
                          embed_size=4, n_samples=2, pathways=tuple(tree.levels[-1]), masked_layers=4,
                          mask_init="authors")
    model = DSCIGM(config, GENES, masks, seed=0)
    # the authors' init: U(+-1/sqrt(n_in)) over the full input width, then masked
    for layer, mask in zip(model.network.encoder, masks, strict=True):
        weight = layer.weight.detach()
        assert torch.all(weight[torch.from_numpy(~mask.T.toarray())] == 0)
        assert float(weight.abs().max()) <= 1 / np.sqrt(mask.shape[0])
    x = np.random.default_rng(0).poisson(2.0, size=(20, len(GENES))).astype(np.float32)
    model.fit(x, TrainingOptions(epochs=3, batch_size=8, progress=False), seed=0)
    for layer, mask in zip(model.network.encoder, masks, strict=True):
        np.testing.assert_array_equal(layer.weight.detach().numpy() != 0, mask.T.toarray())
    # gene X3 feeds no gene node: changing it changes nothing
    changed = x.copy()
    changed[:, GENES.index("X3")] += 50
    np.testing.assert_allclose(model.transform(changed)[0], model.transform(x)[0], rtol=1e-6)
    model.save(tmp_path / "model")
    again = DSCIGM.load(tmp_path / "model")
    assert again.config.masked_layers == 4
    np.testing.assert_allclose(again.transform(x)[0], model.transform(x)[0], rtol=1e-6)


def test_adapter_trains_on_the_hierarchy(tmp_path: Path):
    folder = _write_prior(tmp_path / "prior")
    import anndata

    x = np.random.default_rng(1).poisson(1.5, size=(40, len(GENES))).astype(np.float32)
    adata = anndata.AnnData(np.log1p(x))
    adata.var_names = GENES
    options = {"prior": "authors", "prior_dir": str(folder), "n_layers": 4, "embed_size": 4, "n_samples": 2,
               "batch_size": 16, "progress": False, "threads": 1}
    result = dscigm.train(adata, TrainParams(n_topics=3, epochs=2, seed=0, options=options))
    info = result.info["prior"]
    assert info["kind"] == "hierarchy" and info["sizes"] == [6, 4, 3, 2]
    assert info["connections"] == [int(m.sum()) for m in _expected_masks(True)]
    assert info["n_genes_covered"] == 5  # X3 has no node
    import hashlib

    assert info["sha256"] == {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                              for name in (HIERARCHY_LEVELS_FILE, HIERARCHY_EDGES_FILE, STRING_LINKS_FILE)}
    assert result.hyperparameters["variant"] == "hierarchy-masked"
    assert result.hyperparameters["mask_init"] == "authors"
    assert result.outputs.cell_topic.shape == (40, 3)
    with pytest.raises(InputError, match="n_layers = 4"):
        dscigm.train(adata, TrainParams(n_topics=3, epochs=1, options={**options, "n_layers": 3}))
    with pytest.raises(InputError, match="needs prior_dir"):
        dscigm.train(adata, TrainParams(n_topics=3, epochs=1, options={**options, "prior_dir": None}))


def test_masked_layers_same_numbers_for_any_thread_count_and_old_weights_load(tmp_path: Path):
    tree = read_hierarchical_prior(_write_prior(tmp_path / "prior"))
    masks = tree.masks(GENES)
    config = DSCIGMConfig(n_genes=len(GENES), topic_sizes=(3, 3, 2, 2), hidden_sizes=tree.sizes,
                          embed_size=4, n_samples=2, pathways=tuple(tree.levels[-1]), masked_layers=4,
                          mask_init="authors")
    x = np.random.default_rng(2).poisson(2.0, size=(24, len(GENES))).astype(np.float32)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = DSCIGM(config, GENES, masks, seed=3)
            model.fit(x, TrainingOptions(epochs=2, batch_size=8, progress=False), seed=3)
            runs.append(model.transform(x)[0])
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(runs[0], runs[1])
    # a state dict holding a dense masked weight (as topiceval 0.1 saved it) loads into the connections
    layer = model.network.encoder[1]
    state = model.network.state_dict()
    dense = layer.weight.detach().clone()
    state.pop("encoder.1.values")
    state["encoder.1.weight"] = dense
    state["encoder.1.mask"] = layer.mask.clone()
    fresh = DSCIGM(config, GENES, masks, seed=9)
    fresh.network.load_state_dict(state)
    assert torch.equal(fresh.network.encoder[1].weight, dense)
