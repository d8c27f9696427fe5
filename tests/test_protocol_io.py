"""TopicOutputs validation, the TopicModel protocol, file readers and atomic writes."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest

from topiceval.errors import InputError
from topiceval.io import (
    atomic_write,
    read_gene_names,
    read_labels,
    read_matrix,
    read_outputs,
    write_json,
    write_outputs_h5ad,
)
from topiceval.protocol import TopicModel, TopicOutputs, TrainableTopicModel

GENES = ["A", "B", "C", "D"]


def outputs(**kw):
    base = dict(topic_gene=np.arange(8.0).reshape(2, 4), gene_names=GENES, cell_topic=np.ones((3, 2)))
    base.update(kw)
    return TopicOutputs(**base)


class ToyModel:
    name = "toy"
    gene_names = GENES

    def topic_gene(self):
        return np.arange(8.0).reshape(2, 4)

    def cell_topic(self, adata):
        return np.ones((adata.n_obs, 2)) / 2

    def fit(self, adata, **kwargs):
        return self


def test_protocol_runtime_check():
    import anndata

    model = ToyModel()
    assert isinstance(model, TopicModel) and isinstance(model, TrainableTopicModel)
    assert not isinstance(object(), TopicModel)
    out = TopicOutputs.from_model(model, anndata.AnnData(np.zeros((5, 4))))
    assert out.n_topics == 2 and out.n_cells == 5 and out.name == "toy"
    with pytest.raises(InputError, match="is not a TopicModel"):
        TopicOutputs.from_model(object())


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"gene_names": GENES[:3]}, "3 gene names were given but the topic-gene matrix has 4"),
        ({"gene_names": ["A", "B", "A", "B"]}, r"2 gene name\(s\) occur more than once: A \(x2\), B \(x2\)"),
        ({"gene_names": ["A", "", "C", "D"]}, "empty"),
        ({"topic_gene": np.ones((1, 4))}, "1 topic"),
        ({"topic_gene": np.ones((4, 2))}, "2 gene names|4 gene names"),
        ({"topic_gene": np.array([[1, np.inf, 0, 0], [0, 0, 0, np.nan]])}, r"1 NaN and 1 infinite"),
        ({"cell_topic": np.ones((2, 3))}, "3 topic columns"),
        ({"cell_topic": np.ones((2, 5))}, "transposed"),
        ({"cell_embedding": np.ones((4, 7))}, "4 cells but the cell-topic matrix has 3"),
        ({"topic_gene": np.array(["x"] * 8).reshape(2, 4)}, "numeric"),
        ({"topic_gene": np.ones(4)}, "2-d"),
    ],
)
def test_validation_messages(kw, message):
    with pytest.raises(InputError, match=message):
        outputs(**kw)


def test_read_matrix_variants(tmp_path):
    beta = np.random.default_rng(0).random((3, 4))
    frame = pd.DataFrame(beta, columns=GENES)
    # header of gene names, no index
    frame.to_csv(tmp_path / "h.csv", index=False)
    values, rows, cols = read_matrix(tmp_path / "h.csv")
    np.testing.assert_allclose(values, beta)
    assert rows is None and cols == GENES
    # no header at all
    np.savetxt(tmp_path / "n.csv", beta, delimiter=",")
    values, rows, cols = read_matrix(tmp_path / "n.csv")
    np.testing.assert_allclose(values, beta)
    assert rows is None and cols is None
    # pandas default: index column and numeric column labels (the reference's _tg.csv)
    pd.DataFrame(beta).to_csv(tmp_path / "p.csv")
    values, rows, cols = read_matrix(tmp_path / "p.csv")
    np.testing.assert_allclose(values, beta)
    assert rows == ["0", "1", "2"] and cols is None
    # named index + gene header, tab-separated, gzip
    text = frame.set_index(pd.Index(["t0", "t1", "t2"])).to_csv(sep="\t").encode()
    (tmp_path / "g.tsv.gz").write_bytes(gzip.compress(text))
    values, rows, cols = read_matrix(tmp_path / "g.tsv.gz")
    np.testing.assert_allclose(values, beta)
    assert rows == ["t0", "t1", "t2"] and cols == GENES
    # npy, never pickled
    np.save(tmp_path / "m.npy", beta)
    np.testing.assert_array_equal(read_matrix(tmp_path / "m.npy")[0], beta)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="cannot read"):
        read_matrix(tmp_path / "o.npy")


def test_duplicate_header_names_reach_validation(tmp_path):
    (tmp_path / "d.csv").write_text("A,B,A\n1,2,3\n4,5,6\n")
    assert read_matrix(tmp_path / "d.csv")[2] == ["A", "B", "A"]
    with pytest.raises(InputError, match=r"occur more than once: A \(x2\)"):
        read_outputs(tmp_path / "d.csv")


def test_read_matrix_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_matrix(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_matrix(tmp_path / "empty.csv")
    (tmp_path / "text.csv").write_text("A,B\n1,x\n2,y\n")
    with pytest.raises(InputError, match="non-numeric"):
        read_matrix(tmp_path / "text.csv")
    with pytest.raises(InputError, match="folder"):
        read_matrix(tmp_path)


def test_gene_and_label_readers(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps(GENES))
    (tmp_path / "g.txt").write_text("A\nB\nC\nD\n")
    assert read_gene_names(tmp_path / "g.json") == GENES == read_gene_names(tmp_path / "g.txt")
    (tmp_path / "bad.txt").write_text("A\n\nB\n")
    with pytest.raises(InputError, match="blank line"):
        read_gene_names(tmp_path / "bad.txt")
    (tmp_path / "bad.json").write_text('["A", 3]')
    with pytest.raises(InputError, match="must be strings"):
        read_gene_names(tmp_path / "bad.json")
    (tmp_path / "l.json").write_text('["a", "b", null]')
    assert list(read_labels(tmp_path / "l.json")) == ["a", "b", None]
    pd.DataFrame({"cell": ["c1", "c2"], "cell type": ["x", "y"]}).to_csv(tmp_path / "t.csv", index=False)
    assert list(read_labels(f"{tmp_path / 't.csv'}:cell type")) == ["x", "y"]
    with pytest.raises(InputError, match="column 'kind' is not in .*cell, cell type"):
        read_labels(f"{tmp_path / 't.csv'}:kind")
    with pytest.raises(InputError, match="name the column"):
        read_labels(tmp_path / "t.csv")


def test_labels_from_real_csv_and_h5ad(shared_data, yan_labels):
    yan = read_labels(f"{shared_data / 'datasets/yan/yan_cell_anno.csv'}:yan@colData$cell_type1")
    np.testing.assert_array_equal(yan, yan_labels)
    kang = read_labels(f"{shared_data / 'datasets/kang_pbmc/kang_pbmc.h5ad'}:cell_type")
    assert len(kang) == 1556 and set(kang) >= {"B cells", "CD4 T cells"}
    with pytest.raises(InputError, match="its columns are"):
        read_labels(f"{shared_data / 'datasets/kang_pbmc/kang_pbmc.h5ad'}:celltype")


def test_read_outputs_and_h5ad_round_trip(tmp_path):
    original = outputs(cell_embedding=np.arange(9.0).reshape(3, 3), name="m1")
    write_outputs_h5ad(original, tmp_path / "out.h5ad")
    back = read_outputs(tmp_path / "out.h5ad")
    np.testing.assert_array_equal(back.topic_gene, original.topic_gene)
    np.testing.assert_array_equal(back.cell_topic, original.cell_topic)
    np.testing.assert_array_equal(back.cell_embedding, original.cell_embedding)
    assert list(back.gene_names) == GENES and back.name == "m1"
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]  # no temporary left behind

    np.savetxt(tmp_path / "beta.csv", original.topic_gene, delimiter=",")
    (tmp_path / "genes.txt").write_text("\n".join(GENES))
    from_csv = read_outputs(tmp_path / "beta.csv", gene_names=tmp_path / "genes.txt")
    assert from_csv.name == "beta" and list(from_csv.gene_names) == GENES
    with pytest.raises(InputError, match="no header of gene names"):
        read_outputs(tmp_path / "beta.csv")
    pd.DataFrame(original.topic_gene, columns=GENES).to_csv(tmp_path / "named.csv", index=False)
    with pytest.raises(InputError, match="differ from the topic-gene file's header"):
        read_outputs(tmp_path / "named.csv", gene_names=["D", "C", "B", "A"])


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("partial")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    write_json({"x": float("nan"), "y": np.float32(1.5), "z": np.arange(2)}, target)
    assert json.loads(target.read_text()) == {"x": None, "y": 1.5, "z": [0, 1]}


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_writes_follow_the_umask(tmp_path, mask):
    """mkstemp / mkdtemp make 0600 / 0700 entries: what the writers leave must follow the umask."""
    from topiceval.io import atomic_path, current_umask, make_temp_dir, write_json

    previous = os.umask(mask)
    try:
        assert current_umask() == mask
        write_json({"a": 1}, tmp_path / "a.json")
        with atomic_path(tmp_path / "b.npy", suffix=".npy") as tmp:
            np.save(tmp, np.zeros(3))
        folder = make_temp_dir(".stage.", tmp_path)
        (tmp_path / "plain.txt").write_text("x")  # what open() gives, for comparison
        os.mkdir(tmp_path / "plain")
    finally:
        os.umask(previous)
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "a.json") == mode(tmp_path / "b.npy") == mode(tmp_path / "plain.txt") == 0o666 & ~mask
    assert mode(folder) == mode(tmp_path / "plain") == 0o777 & ~mask


def test_a_text_file_named_h5ad_as_labels_names_the_file_and_the_option(tmp_path, capsys):
    from topiceval.cli import main
    from topiceval.io import read_labels

    fake = tmp_path / "fake.h5ad"
    fake.write_text("cell_type\nA\nB\n")
    with pytest.raises(InputError, match=r"fake\.h5ad is not a readable h5ad file \(--labels FILE\.h5ad:COLUMN"):
        read_labels(f"{fake}:cell_type")
    from topiceval.examples import EXAMPLES

    example = EXAMPLES["yan_nmf"]
    assert main(["score", "--topic-gene", str(example.topic_gene), "--labels", f"{fake}:cell_type",
                 "--metrics", "ip", "--cell-topic", str(example.cell_topic)]) == 2
    err = capsys.readouterr().err
    assert str(fake) in err and "--labels" in err and "Traceback" not in err


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_score_out_and_details_follow_the_umask(tmp_path, mask, capsys):
    """`topiceval score --out --details` under a umask: group (and world for 022) can read the files."""
    from topiceval.cli import main

    previous = os.umask(mask)
    try:
        assert main(["score", "--example", "yan_nmf", "--metrics", "tc,td,ora", "--out", str(tmp_path / "r.json"),
                     "--details", str(tmp_path / "details")]) == 0
    finally:
        os.umask(previous)
    written = [tmp_path / "r.json", *sorted((tmp_path / "details").iterdir())]
    assert [p.name for p in written] == ["r.json", "ora.csv"]
    assert {p.stat().st_mode & 0o777 for p in written} == {0o666 & ~mask}
    assert (tmp_path / "details").stat().st_mode & 0o777 == 0o777 & ~mask
