"""topiceval.pl: every plot rendered on real data (the shipped Yan et al. NMF example scored against
the shipped Reactome collection, and the published leaderboard), with checks of what is drawn."""

from __future__ import annotations

import base64
import warnings

import matplotlib

matplotlib.use("Agg")

import anndata  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import topiceval as te  # noqa: E402
from topiceval import pl  # noqa: E402
from topiceval.errors import InputError  # noqa: E402
from topiceval.examples import EXAMPLES  # noqa: E402
from topiceval.leaderboard import report  # noqa: E402
from topiceval.leaderboard.runner import Results  # noqa: E402

from conftest import REPO  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def yan():
    example = EXAMPLES["yan_nmf"]
    outputs = te.read_outputs(example.topic_gene, cell_topic=example.cell_topic)
    labels = np.array(example.labels.read_text().split(), dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluation = te.evaluate(outputs, gene_sets="reactome", labels=labels,
                                 metrics="tc,td,tq,ip,ora,gsea", gsea_n_perm=100)
    return outputs, labels, evaluation


@pytest.fixture(scope="module")
def leaderboard() -> Results:
    return Results.read(REPO / "reports" / "leaderboard")


def _axes():
    return Figure(figsize=(6, 4)).add_subplot()


def test_top_genes_draws_each_topics_top_genes(yan):
    outputs, _, evaluation = yan
    ax = pl.top_genes(outputs, n_genes=4)
    image = ax.images[0].get_array()
    # Independent: the per-topic top genes the evaluation recorded, first 4 of each, first seen.
    expected = list(dict.fromkeys(g for genes in evaluation.per_topic["top_genes"] for g in genes[:4]))
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert image.shape == (10, len(expected))
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"topic {k}" for k in range(10)]
    # Row-scaled: each row's largest weight is 1; the cell of a topic's own first gene is 1.
    np.testing.assert_allclose(image.max(axis=1), 1.0)
    first = expected.index(evaluation.per_topic["top_genes"].iloc[3][0])
    assert image[3, first] == pytest.approx(1.0)
    genes = list(outputs.gene_names)
    raw = pl.top_genes(outputs, n_genes=4, topics=[2, 5], standard_scale=False, ax=_axes())
    cols = [genes.index(t.get_text()) for t in raw.get_xticklabels()]
    np.testing.assert_allclose(raw.images[0].get_array(), outputs.topic_gene[np.ix_([2, 5], cols)])
    # Signed weights (LDVAE-like loadings): a diverging map centred on 0.
    signed = te.TopicOutputs(topic_gene=outputs.topic_gene - outputs.topic_gene.mean(axis=1, keepdims=True),
                             gene_names=outputs.gene_names, name="centred")
    image = pl.top_genes(signed, n_genes=3, ax=_axes()).images[0]
    low, high = image.get_clim()
    assert image.get_cmap().name == "RdBu_r" and low == pytest.approx(-high) and high == pytest.approx(1.0)


def test_enrichment_gsea_dotplot(yan):
    _, _, evaluation = yan
    table = evaluation.details["gsea"]
    ax = pl.enrichment(evaluation, "gsea", n_terms=6, ax=_axes())
    terms = list(table.groupby("term")["fdr"].min().sort_values(kind="stable").index[:6])
    shown = table[table["term"].isin(terms)]
    points = ax.collections[0]
    assert len(points.get_offsets()) == len(shown)
    assert [t.get_text() for t in ax.get_yticklabels()] == [pl._short(t) for t in terms]
    np.testing.assert_allclose(np.sort(points.get_array()), np.sort(shown["nes"].to_numpy()))
    low, high = points.get_clim()
    assert low == pytest.approx(-high) and high == pytest.approx(np.abs(shown["nes"]).max())
    # Sizes grow with the leading-edge share.
    share = shown["leading_edge"].str.count(";").to_numpy() + 1
    share = share / shown["set_size"].to_numpy()
    sizes = points.get_sizes()
    assert np.corrcoef(sizes, share)[0, 1] == pytest.approx(1.0)


def test_enrichment_ora_dotplot_significant_edges(yan):
    _, _, evaluation = yan
    table = evaluation.details["ora"]
    ax = pl.enrichment(evaluation, "ora", n_terms=5, significant_only=True, ax=_axes())
    terms = list(table[table["significant"]].groupby("term")["padj"].min().sort_values(kind="stable").index[:5])
    shown = table[table["term"].isin(terms)]
    points = ax.collections[0]
    assert len(points.get_offsets()) == len(shown)
    np.testing.assert_allclose(np.sort(points.get_array()), np.sort(-np.log10(shown["padj"].to_numpy())))
    edged = (points.get_edgecolors()[:, 3] > 0).sum()
    assert edged == int(shown["significant"].sum())
    assert int(table["significant"].sum()) >= 1


def test_enrichment_reads_anndata_and_tables(yan):
    _, _, evaluation = yan
    adata = anndata.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(90)]))
    evaluation.to_uns(adata)
    a = pl.enrichment(adata, "gsea", n_terms=4, ax=_axes()).collections[0].get_offsets()
    b = pl.enrichment(evaluation.details["gsea"], "gsea", n_terms=4, ax=_axes()).collections[0].get_offsets()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="no CLUSTERING|method must be"):
        pl.enrichment(evaluation, "clustering")


@pytest.mark.parametrize("sign", [1, -1])
def test_gsea_running_sum_matches_the_table(yan, reactome, sign):
    outputs, _, evaluation = yan
    table = evaluation.details["gsea"]
    pairs = table[np.sign(table["es"]) == sign].sort_values("pval", kind="stable").head(3)
    assert len(pairs) >= 1  # NMF weights are non-negative: few negative ES (one on this example)
    for row in pairs.itertuples():
        ax = pl.gsea_running_sum(outputs, reactome, row.topic, row.term, ax=_axes())
        assert ax.es == pytest.approx(row.es, abs=1e-12)
        assert ax.leading_edge == row.leading_edge.split(";")
        walk = ax.lines[0].get_ydata()
        assert walk.size == outputs.topic_gene.shape[1]
        assert walk[-1] == pytest.approx(0.0, abs=1e-9)  # the walk ends at 0 by construction
        ticks = len(ax.collections[0].get_segments())
        assert ticks == row.set_size  # one tick per set gene in the model
        assert ax.get_title().count(f"ES = {row.es:.3f}") == 1


def test_gsea_running_sum_from_anndata_and_errors(yan, tmp_path):
    outputs, labels, evaluation = yan
    path = tmp_path / "outputs.h5ad"
    te.write_outputs_h5ad(outputs, path, obs=pd.DataFrame({"stage": labels}, index=[f"c{i}" for i in range(90)]))
    adata = anndata.read_h5ad(path)
    row = evaluation.details["gsea"].sort_values("fdr").iloc[0]
    ax = pl.gsea_running_sum(adata, "reactome", int(row["topic"]), row["term"], ax=_axes())
    assert ax.es == pytest.approx(row["es"], abs=1e-12)
    with pytest.raises(InputError, match="no gene set named"):
        pl.gsea_running_sum(outputs, "reactome", 0, "NOT_A_PATHWAY")
    with pytest.raises(InputError, match="out of range"):
        pl.gsea_running_sum(outputs, "reactome", 10, row["term"])


def test_cell_types_heatmap_means(yan, tmp_path):
    outputs, labels, _ = yan
    ax = pl.cell_types(outputs, labels, ax=_axes())
    image = np.asarray(ax.images[0].get_array())
    types = sorted(set(labels))
    assert [t.get_text() for t in ax.get_xticklabels()] == types
    order = [int(t.get_text().split()[1]) for t in ax.get_yticklabels()]
    assert sorted(order) == list(range(10))
    # Independent: the mean of each type's rows, by a loop.
    expected = np.array([[outputs.cell_topic[labels == t, k].mean() for t in types] for k in order])
    np.testing.assert_allclose(image, expected)
    lo, hi = ax.images[0].get_clim()
    assert lo == pytest.approx(expected.min()) and hi == pytest.approx(expected.max())
    best = expected.argmax(axis=1)
    assert list(best) == sorted(best)  # topics ordered by their best-matching type
    # From an AnnData with labels in obs; save= writes the file.
    adata = anndata.AnnData(obs=pd.DataFrame({"stage": labels}, index=[f"c{i}" for i in range(90)]))
    adata.obsm["X_nmf"] = outputs.cell_topic
    out = tmp_path / "types.png"
    ax2 = pl.cell_types(adata, "stage", cell_topic_key="X_nmf", save=out)
    np.testing.assert_allclose(np.asarray(ax2.images[0].get_array()), expected)
    assert out.stat().st_size > 1000


def test_metrics_overview(yan, reactome):
    outputs, _, evaluation = yan
    fig = pl.metrics(evaluation)
    bounded, counts = fig.axes
    assert [t.get_text() for t in bounded.get_yticklabels()] == ["TC", "TD", "TQ", "IP", "ORA_U", "GSEA_U"]
    assert [t.get_text() for t in counts.get_yticklabels()] == ["ORA_N", "ORA_Q", "GSEA_N", "GSEA_Q"]
    widths = [p.get_width() for p in bounded.patches]
    np.testing.assert_allclose(widths, evaluation.scores[["TC", "TD", "TQ", "IP", "ORA_U", "GSEA_U"]])
    # A NaN score (nothing enriched on Hallmark) is drawn as n/a, and skipped metrics are named.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        empty = te.evaluate(outputs, gene_sets="hallmark", metrics="ora")
    assert np.isnan(empty["ORA_U"])
    fig = pl.metrics(empty, fig=Figure())
    texts = [t.get_text().strip() for ax in fig.axes for t in ax.texts]
    assert "n/a" in texts


def test_results_table_ranks_models(leaderboard):
    ax = pl.results_table(leaderboard, "pollen", "c2", ax=_axes())
    table = report.ranked_table(leaderboard, "pollen", "c2")
    names = [t.get_text().split()[0] for t in ax.get_yticklabels()]
    assert names == list(table.index)
    assert list(table["rank"]) == sorted(table["rank"])
    columns = [c for c in report.MAIN_METRICS if c in table.columns]
    assert [t.get_text() for t in ax.get_xticklabels()] == columns
    circles = ax.collections[0]
    finite = np.isfinite(table[columns].to_numpy(dtype=float))
    assert len(circles.get_offsets()) == int(finite.sum())
    scaled = circles.get_array()
    assert scaled.min() == pytest.approx(0.0) and scaled.max() == pytest.approx(1.0)
    # The best model of a column (TC) has the scaled value 1 at its row.
    offsets = circles.get_offsets()
    j = columns.index("TC")
    best_row = int(np.argmax(table["TC"].to_numpy()))
    at = [i for i, (x, y) in enumerate(offsets) if x == j and y == best_row]
    assert scaled[at[0]] == pytest.approx(1.0)


def test_report_draws_results_tables_with_pl(leaderboard, tmp_path):
    # The published leaderboard cut to two datasets (the whole one draws many plots).
    keep = ["pollen", "yan"]

    def cut(frame):
        return frame[frame["dataset"].isin(keep)] if "dataset" in frame else frame

    small = Results(dict(leaderboard.config, datasets=[d for d in leaderboard.config["datasets"] if d["name"] in keep]),
                    *(cut(getattr(leaderboard, name)) for name in ("cells", "scores", "per_topic", "pathways")))
    paths = report.write_report(small, tmp_path / "report")
    page = paths["html"].read_text()
    for dataset in keep:
        assert f"Results table on {dataset} (c2)" in page
    assert report.plot_results_table(leaderboard, "no-such-dataset", "c2") is None


def test_bad_inputs(yan):
    outputs, _, evaluation = yan
    with pytest.raises(InputError, match="expected TopicOutputs"):
        pl.top_genes(evaluation)
    with pytest.raises(InputError, match="n_genes"):
        pl.top_genes(outputs, n_genes=0)
    with pytest.raises(InputError, match="labels for"):
        pl.cell_types(outputs, ["a", "b"])
    with pytest.raises(InputError, match="expected an Evaluation"):
        pl.metrics(outputs)


def test_critical_difference_diagram(leaderboard):
    from topiceval.leaderboard import statistics

    found = statistics.friedman_overall(leaderboard, "c2")
    assert found is not None
    result, _ = found
    ax = pl.critical_difference(result, ax=_axes())
    ranks = result.mean_ranks
    labels = [t.get_text() for t in ax.texts if "(" in t.get_text()]
    assert labels == [f"{m} ({r:.2f})" for m, r in ranks.items()]
    assert any(t.get_text() == f"CD = {result.critical_difference:.2f}" for t in ax.texts)
    # Independent: the maximal groups of consecutive models within CD of the group's best.
    values = ranks.to_numpy()
    groups = []
    for i in range(len(values)):
        j = max(j for j in range(i, len(values)) if values[j] - values[i] <= result.critical_difference)
        if j > i and not any(a <= i and j <= b for a, b in groups):
            groups.append((i, j))
    bars = [c for c in ax.collections if c.get_label() == "clique"]
    assert len(bars) == len(groups)
    for bar, (a, b) in zip(bars, groups, strict=True):
        (x0, _), (x1, _) = bar.get_segments()[0]
        assert x0 == pytest.approx(values[a] - 0.03) and x1 == pytest.approx(values[b] + 0.03)
    png = statistics.plot_critical_difference(result, "title")  # the report's image, drawn by pl
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"


def test_stability_draws_every_seed_pair_and_the_model_means():
    """Real runs: LDA and NMF on the shipped Pollen data, three seeds each; every seed pair's
    stability is the independent topic_stability of the two runs."""
    from topiceval import datasets
    from topiceval.adapters import lda, nmf
    from topiceval.metrics.stability import topic_stability

    adata = datasets.preprocess(datasets.load_default(), n_top_genes=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = {"nmf": [nmf.fit(adata, 4, epochs=30, seed=s, init="random") for s in (0, 1, 2)],
                "lda": [lda.fit(adata, 4, epochs=3, seed=s) for s in (0, 1, 2)]}
    rows = [{"dataset": "pollen", "model": model, "seed_a": a, "seed_b": b,
             "stability": topic_stability(outs[a].topic_gene, outs[b].topic_gene).score, "n_matched": 4}
            for model, outs in runs.items() for a, b in ((0, 1), (0, 2), (1, 2))]
    table = pd.DataFrame(rows)
    ax = pl.stability(table, ax=_axes())
    points = ax.collections[0].get_offsets()
    assert len(points) == 6 and sorted(points[:, 1]) == pytest.approx(sorted(table["stability"]))
    means = table.groupby("model")["stability"].mean().sort_values(ascending=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(means.index)
    bars = [line for line in ax.lines if line.get_label() in ("mean", "_nolegend_")]
    assert [line.get_ydata()[0] for line in bars] == pytest.approx(list(means))
    assert all(0 < v <= 1 for v in table["stability"])
    with pytest.raises(InputError, match="no seed pairs"):
        pl.stability(table, dataset="absent")
