"""Leaderboard statistics: topic stability over seeds, paired model comparisons, Friedman / Nemenyi.

What this module adds to a leaderboard's outputs (it computes with :mod:`topiceval.stats` and
:mod:`topiceval.metrics.stability`; the runner and the report only call it):

* ``stability``: for every (dataset, model) with at least two completed seeds, the topic
  stability (:func:`~topiceval.metrics.stability.topic_stability`, Hungarian matching on the cosine
  of topic-gene rows) of every pair of seeds, read from the cached run folders. ``stability.csv``
  has one row per pair; ``summary.csv`` reports the mean and sample sd over the pairs (``n`` =
  number of pairs); ``scores.csv`` has one row per seed whose value is the mean stability of that
  seed with the other seeds (the mean of those rows is the mean over pairs). It does not depend on
  the gene sets, so it is repeated for every collection the cell was scored on.
* ``comparisons.csv``: for every metric and pair of models, the Wilcoxon signed-rank test over the
  (dataset, seed) pairs both completed, Holm-adjusted over the pairs of that metric
  (:func:`topiceval.stats.paired_comparisons`), columns
  :data:`~topiceval.stats.COMPARISON_COLUMNS`. Metrics of the first collection keep their names;
  a gene-set-dependent metric of another collection is named ``METRIC@COLLECTION`` (``TC@hallmark``);
  metrics whose values are the same on every collection (TD, IP, ARI, ...) appear once.
  ``stability`` is not compared (one value per seed pair, not per (dataset, seed)).
* In the report: the Friedman test over the models' per-dataset ranks (the overall ranking's
  ranks) with a Nemenyi critical-difference diagram (Demšar 2006), and per main metric the
  "A beats B" statements with their Wilcoxon p-values (raw and Holm-adjusted).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from topiceval.stats import COMPARISON_COLUMNS, FriedmanResult, friedman_test, paired_comparisons

if TYPE_CHECKING:  # pragma: no cover
    from .runner import CellOutcome, Results

__all__ = [
    "STABILITY",
    "add_stability_rows",
    "STABILITY_COLUMNS",
    "comparisons",
    "friedman_overall",
    "plot_critical_difference",
    "report_sections",
    "stability_pairs",
    "stability_summary",
]

#: The score key of topic stability in ``scores.csv`` / ``summary.csv``.
STABILITY = "stability"
#: Columns of ``stability.csv``.
STABILITY_COLUMNS = ["dataset", "model", "seed_a", "seed_b", "stability", "n_matched"]
#: Significance level of the report's statements and of the critical difference.
ALPHA = 0.05


# --------------------------------------------------------------------------- stability
def stability_pairs(outcomes: Sequence[CellOutcome], cache: Path) -> pd.DataFrame:
    """Topic stability of every pair of completed seeds of each (dataset, model).

    Reads each run's topic-gene matrix from ``cache/runs/<train_key>/outputs.h5ad``.
    """
    from topiceval.adapters.registry import OUTPUTS_FILE
    from topiceval.io import read_outputs_h5ad
    from topiceval.metrics.stability import topic_stability

    groups: dict[tuple[str, str], list[CellOutcome]] = {}
    for o in outcomes:
        if o.status == "done" and o.train_key:
            groups.setdefault((o.dataset, o.model), []).append(o)
    rows = []
    for (dataset, model), done in groups.items():
        if len(done) < 2:
            continue
        done = sorted(done, key=lambda o: o.seed)
        matrices = {o.seed: read_outputs_h5ad(cache / "runs" / o.train_key / OUTPUTS_FILE,
                                              require_topic_gene=False).topic_gene for o in done}
        if any(m is None for m in matrices.values()):
            continue  # a cell embedding alone (clustering-only rows) has no topics to match
        for a, b in itertools.combinations(sorted(matrices), 2):
            result = topic_stability(matrices[a], matrices[b])
            rows.append({"dataset": dataset, "model": model, "seed_a": a, "seed_b": b,
                         "stability": result.score, "n_matched": result.info["n_matched"]})
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def add_stability_rows(scores: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with the stability rows appended: per (dataset, model, seed, collection) the mean
    stability of the seed with the other seeds; ``config_sha256`` is that of the cell's scores."""
    if pairs.empty or scores.empty:
        return scores
    per_seed = pd.concat([pairs.rename(columns={"seed_a": "seed"})[["dataset", "model", "seed", "stability"]],
                          pairs.rename(columns={"seed_b": "seed"})[["dataset", "model", "seed", "stability"]]])
    per_seed = per_seed.groupby(["dataset", "model", "seed"], sort=False)["stability"].mean()
    cells = scores.drop_duplicates(["dataset", "model", "seed", "collection"])[
        ["dataset", "species", "model", "seed", "collection", "config_sha256"]]
    index = pd.MultiIndex.from_frame(cells[["dataset", "model", "seed"]])
    rows = cells.assign(metric=STABILITY, value=per_seed.reindex(index).to_numpy())[list(scores.columns)]
    rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
    return pd.concat([scores, rows], ignore_index=True) if len(rows) else scores


def stability_summary(summary: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Replace the ``stability`` rows of a summary by the mean, sample sd and count over seed pairs."""
    if pairs.empty or summary.empty or STABILITY not in set(summary["metric"]):
        return summary
    stats = pairs.groupby(["dataset", "model"])["stability"].agg(
        mean="mean", sd=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan, n="size")
    out = summary.copy()
    mask = out["metric"] == STABILITY
    keys = pd.MultiIndex.from_frame(out.loc[mask, ["dataset", "model"]])
    for column in ("mean", "sd", "n"):
        out.loc[mask, column] = stats[column].reindex(keys).to_numpy()
    out["n"] = out["n"].astype(int)
    return out


# --------------------------------------------------------------------------- comparisons
def _metric_order(metrics: Sequence[str]) -> list[str]:
    from .report import METRIC_ORDER

    present = list(dict.fromkeys(metrics))
    return [m for m in METRIC_ORDER if m in present] + [m for m in present if m not in METRIC_ORDER]


def _models(results: Results) -> list[str]:
    from .report import _model_order

    return _model_order(results)


def _collections(results: Results) -> list[str]:
    named = [c["name"] for c in results.config.get("collections", [])]
    present = list(pd.unique(results.scores["collection"])) if not results.scores.empty else []
    return [c for c in named if c in present] + [c for c in present if c not in named]


def comparisons(results: Results) -> pd.DataFrame:
    """Wilcoxon signed-rank comparisons of every pair of models, per metric (``comparisons.csv``).

    Returns
    -------
    pandas.DataFrame
        :data:`~topiceval.stats.COMPARISON_COLUMNS`; ``mean_diff`` is ``model_a - model_b``
        (higher is better for every score), ``pvalue_holm`` is adjusted over the model pairs of
        the metric.
    """
    scores = results.scores
    if scores.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    scores = scores[scores["metric"] != STABILITY]
    models = [m for m in _models(results) if m in set(scores["model"])]
    tables = []
    seen: dict[str, pd.DataFrame] = {}
    for collection in _collections(results):
        part = scores[scores["collection"] == collection]
        for metric in _metric_order(part["metric"]):
            values = part[part["metric"] == metric].pivot_table(
                index=["dataset", "seed"], columns="model", values="value", aggfunc="first", dropna=False)
            earlier = seen.get(metric)
            if earlier is None:
                seen[metric] = values
            elif earlier.reindex(index=values.index, columns=values.columns).equals(values):
                continue  # gene-set independent (TD, IP, ARI, ...): compared on an earlier collection
            label = metric if earlier is None else f"{metric}@{collection}"
            tables.append(paired_comparisons(values.reindex(columns=models), metric=label, models=models))
    if not tables:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    return pd.concat(tables, ignore_index=True)[COMPARISON_COLUMNS]


# --------------------------------------------------------------------------- Friedman / CD
def friedman_overall(results: Results, collection: str) -> tuple[FriedmanResult, pd.DataFrame] | None:
    """Friedman test over the models' per-dataset ranks (the mean rank over ``rank_by``, the ranks
    the overall ranking averages), on the datasets where every model ran.

    Returns ``None`` with fewer than 3 models or 2 such datasets (no test is possible).
    """
    from .report import ranked_table

    datasets = list(pd.unique(results.scores["dataset"])) if not results.scores.empty else []
    ranks = {}
    for dataset in datasets:
        table = ranked_table(results, dataset, collection)
        if not table.empty:
            ranks[dataset] = table["rank"]
    if not ranks:
        return None
    frame = pd.DataFrame(ranks).T.reindex(columns=[m for m in _models(results)
                                                    if any(m in r.index for r in ranks.values())])
    complete = frame.dropna(axis=0, how="any")
    if frame.shape[1] < 3 or len(complete) < 2:
        return None
    return friedman_test(complete, higher_is_better=False, alpha=ALPHA), complete


def plot_critical_difference(result: FriedmanResult, title: str = "") -> str:
    """Demšar's critical-difference diagram as a base64 PNG, drawn by
    :func:`topiceval.pl.critical_difference`: mean ranks on an axis (1 = best, left), the CD as a
    bar, and thick lines joining models not significantly different (Nemenyi)."""
    from topiceval import pl

    from .report import _matplotlib, _png

    _, Figure = _matplotlib()
    fig = Figure(figsize=(7.0, 0.9 + 0.32 * (2.2 - pl._cd_bottom(result))), layout="constrained")
    pl.critical_difference(result, title=title, ax=fig.add_subplot())
    return _png(fig)


def plot_stability(pairs: pd.DataFrame) -> str:
    """The topic stability of every seed pair as a base64 PNG, drawn by :func:`topiceval.pl.stability`."""
    from topiceval import pl

    from .report import _matplotlib, _png

    _, Figure = _matplotlib()
    n_models = pairs["model"].nunique()
    fig = Figure(figsize=(1.2 + 0.8 * n_models, 3.2), layout="constrained")
    pl.stability(pairs, ax=fig.add_subplot())
    return _png(fig)


# --------------------------------------------------------------------------- report
def _p(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def _statements(table: pd.DataFrame, metrics: Sequence[str]) -> list[list[str]]:
    rows = []
    for metric in metrics:
        part = table[table["metric"] == metric]
        for _, r in part.sort_values("pvalue", kind="stable").iterrows():
            if not r["n"] or not np.isfinite(r["mean_diff"]) or r["mean_diff"] == 0:
                continue
            better, worse = (r["model_a"], r["model_b"]) if r["mean_diff"] > 0 else (r["model_b"], r["model_a"])
            verdict = "yes" if np.isfinite(r["pvalue_holm"]) and r["pvalue_holm"] < ALPHA else "no"
            rows.append([metric, f"{better} beats {worse}", str(int(r["n"])), f"{abs(r['mean_diff']):.3g}",
                         _p(r["pvalue"]), _p(r["pvalue_holm"]), verdict])
    return rows


def report_sections(results: Results, *, plots: bool = True) -> tuple[list[str], list[str]]:
    """The report's "Statistical comparison" and "Topic stability" sections: (Markdown lines, HTML parts)."""
    from .report import MAIN_METRICS, _html_table, _markdown_table, format_value

    md = ["## Statistical comparison", "",
          (f"Friedman test over the models' per-dataset ranks (those of the overall ranking), on the datasets "
           f"where every model ran; critical difference (CD) of the Nemenyi test at alpha = {ALPHA} (Demšar "
           "2006; q from scipy.stats.studentized_range). Two models whose mean ranks differ by less than the CD "
           "are not significantly different."), ""]
    htm = ["<h2>Statistical comparison</h2>", f"<p>{html.escape(md[2])}</p>"]
    for collection in _collections(results):
        found = friedman_overall(results, collection)
        if found is None:
            text = (f"{collection} gene sets: no Friedman test (it needs at least 3 models on at least 2 datasets "
                    "where all of them ran).")
            md += [text, ""]
            htm.append(f"<p>{html.escape(text)}</p>")
            continue
        result, frame = found
        text = (f"{collection} gene sets: Friedman chi-square = {result.statistic:.3g}, p = {_p(result.pvalue)} "
                f"over {result.n_blocks} datasets ({', '.join(map(str, frame.index))}) and {len(frame.columns)} "
                f"models; CD = {result.critical_difference:.3g}.")
        header = ["model", "mean rank"]
        rows = [[m, format_value(r)] for m, r in result.mean_ranks.items()]
        md += [text, "", _markdown_table(header, rows), ""]
        htm.append(f"<h3>{html.escape(collection)} gene sets</h3><p>{html.escape(text)}</p>"
                   + _html_table(header, rows, "friedman"))
        if plots:
            label = f"Critical-difference diagram ({collection})"
            image = plot_critical_difference(result, f"Mean rank over {result.n_blocks} datasets ({collection})")
            htm.append(f'<img alt="{html.escape(label)}" src="data:image/png;base64,{image}">')

    table = comparisons(results)
    metrics = [m for m in MAIN_METRICS if m in set(table["metric"])]
    intro = ("Per metric, each pair of models over the (dataset, seed) pairs both completed: Wilcoxon "
             "signed-rank test (two-sided), p-values Holm-adjusted over the pairs of a metric; `significant`: "
             f"Holm p < {ALPHA}. Every metric and pair is in `comparisons.csv`.")
    header = ["metric", "statement", "pairs", "mean difference", "p", "p (Holm)", "significant"]
    rows = _statements(table, metrics)
    md += ["### Which model beats which", "", intro, ""]
    htm.append("<h3>Which model beats which</h3><p>" + html.escape(intro.replace("`", "")) + "</p>")
    if rows:
        md += [_markdown_table(header, rows), ""]
        htm.append(_html_table(header, rows, "comparisons"))
    else:
        md += ["No pair of models shares a (dataset, seed).", ""]
        htm.append("<p>No pair of models shares a (dataset, seed).</p>")

    summary = results.summary()
    part = summary[summary["metric"] == STABILITY].drop_duplicates(["dataset", "model"])
    md += ["## Topic stability", ""]
    htm.append("<h2>Topic stability</h2>")
    if part.empty:
        text = ("Not computed for these results: the runner computes it from the cached runs of at least two "
                "completed seeds of a (dataset, model); results with one seed, or redrawn from files written "
                "before topic stability existed, have none (stability.csv is empty).")
        md += [text, ""]
        htm.append(f"<p>{html.escape(text)}</p>")
    else:
        text = ("Mean ± sample sd over seed pairs of the mean cosine between the topics of two seeds, matched "
                "one-to-one (Hungarian algorithm on topic-gene cosine similarity). Per pair: stability.csv.")
        datasets = list(pd.unique(part["dataset"]))
        models = [m for m in _models(results) if m in set(part["model"])]
        grid = part.set_index(["model", "dataset"])
        header = ["model", *datasets]
        rows = [[m, *[format_value(grid.loc[(m, d), "mean"], grid.loc[(m, d), "sd"]) if (m, d) in grid.index
                      else "–" for d in datasets]] for m in models]
        md += [text, "", _markdown_table(header, rows), ""]
        htm.append(f"<p>{html.escape(text)}</p>" + _html_table(header, rows, "stability"))
        pairs = results.stability
        if plots and isinstance(pairs, pd.DataFrame) and not pairs.dropna(subset=["stability"]).empty:
            # the summary comes from summary.csv; the plot needs the pairs (stability.csv), which
            # results cut down or rebuilt from scores alone may not carry
            image = plot_stability(pairs)
            htm.append(f'<img alt="topic stability of every seed pair" src="data:image/png;base64,{image}">')
    return md, htm


# --------------------------------------------------------------------------- choosing K
#: Columns of :func:`select_k`'s table (``_sd``: sample sd over seeds; over seed pairs for stability).
SELECT_K_METRICS = ("stability", "TC", "TD", "TQ", "IP", "ARI", "NMI")


def select_k(
    data: str,
    model: str,
    topics: Sequence[int],
    seeds: Sequence[int],
    *,
    label_key: str | None = None,
    species: str | None = None,
    values: str | None = None,
    gene_sets: str = "hallmark",
    metrics: Sequence[str] = ("tc", "td", "tq", "ip", "clustering"),
    epochs: int | None = None,
    n_top_genes: int | None = 5000,
    evaluation: dict | None = None,
    cache: str | Path | None = None,
    backend: str = "joblib",
    n_jobs: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Train ``model`` for every K in ``topics`` and seed through the leaderboard runner; tabulate.

    Every (K, seed) is a leaderboard cell (cached, resumable, parallel over seeds with ``n_jobs``).

    Parameters
    ----------
    data
        An h5ad / expression file (then ``label_key`` and ``species`` are needed) or a registered
        dataset name (``pollen``).
    model
        A registered model name.
    topics, seeds
        The K values (each at least 2) and the seeds (at least two, for stability).
    gene_sets
        Collection for TC / TQ (a shipped name, GMT path or ``msigdb:NAME@RELEASE``).

    Returns
    -------
    pandas.DataFrame
        One row per K (index ``K``): ``n_seeds`` and, for each of :data:`SELECT_K_METRICS`
        computed, the mean and ``<metric>_sd``; ``stability_x_TQ`` and ``marked`` (the K that
        maximises mean stability x mean TQ, the only rule applied; it is not a recommendation).
    """
    from topiceval.errors import InputError

    from .config import load_config
    from .runner import run

    topics = [int(k) for k in topics]
    seeds = [int(s) for s in seeds]
    if not topics or any(k < 2 for k in topics) or len(set(topics)) != len(topics):
        raise InputError(f"topics must be distinct integers of at least 2, got {topics}")
    if len(set(seeds)) < 2:
        raise InputError(f"topic stability needs at least two seeds, got {seeds}")
    path = Path(data)
    if path.exists():
        if label_key is None or species is None:
            raise InputError("a data file needs --label-key and --species")
        dataset: dict[str, Any] | str = {"name": path.stem, "path": str(path.resolve()), "label_key": label_key,
                                         "species": species, "values": values or "counts"}
    else:
        dataset = data
    rows = []
    for k in topics:
        raw = {
            "name": f"select-k {model} K={k}",
            "seeds": seeds,
            "datasets": [dataset],
            "preprocess": {"n_top_genes": n_top_genes},
            "train": {"models": [model], "n_topics": k},
            "models": {model: {"epochs": epochs} if epochs is not None else {}},
            "collections": [{"name": "sets", "human": gene_sets, "mouse": gene_sets, "metrics": list(metrics)}],
            "evaluation": dict(evaluation or {}),
            "run": {"backend": backend, "n_jobs": n_jobs, "threads_per_cell": 1},
        }
        results = run(load_config(raw), cache=cache, progress=progress)
        failed = results.cells[results.cells["status"] != "done"]
        if not failed.empty:
            raise InputError(f"K={k}: {len(failed)} cell(s) did not complete: {failed['reason'].iloc[0]}")
        summary = results.summary().drop_duplicates(["model", "metric"]).set_index("metric")
        row: dict[str, Any] = {"K": k, "n_seeds": len(seeds)}
        for metric in SELECT_K_METRICS:
            if metric in summary.index:
                row[metric] = float(summary.loc[metric, "mean"])
                row[f"{metric}_sd"] = float(summary.loc[metric, "sd"])
        rows.append(row)
    table = pd.DataFrame(rows).set_index("K")
    product = table["stability"] * table["TQ"] if {"stability", "TQ"} <= set(table.columns) else None
    if product is not None:
        table["stability_x_TQ"] = product
        table["marked"] = False
        if product.notna().any():
            table.loc[product.idxmax(), "marked"] = True
    return table


def plot_select_k(table: pd.DataFrame) -> bytes:
    """PNG: stability, TQ, TC, TD (and IP, ARI, NMI when present) against K, mean +- sd over seeds
    (over seed pairs for stability); the K maximising stability x TQ is marked."""
    import base64

    from .report import _matplotlib, _png

    _, Figure = _matplotlib()
    metrics = [m for m in SELECT_K_METRICS if m in table.columns]
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    ks = table.index.to_numpy()
    for metric in metrics:
        ax = axes[0] if metric in ("stability", "TD", "IP", "ARI", "NMI") else axes[1]
        ax.errorbar(ks, table[metric], yerr=table[f"{metric}_sd"].fillna(0), marker="o", capsize=3, label=metric)
    if "marked" in table and table["marked"].any():
        best = table.index[table["marked"]][0]
        for ax in axes:
            ax.axvline(best, color="grey", linestyle="--", linewidth=1)
        axes[0].set_title(f"dashed: K = {best} maximises stability x TQ", fontsize=9)
    for ax in axes:
        ax.set_xlabel("K (topics)")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    axes[1].set_title("TC and TQ", fontsize=9)
    return base64.b64decode(_png(fig))
