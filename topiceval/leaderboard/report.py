"""Leaderboard reports: a Markdown summary and a self-contained HTML page, plus every number as CSV.

:func:`write_report` writes, into one folder:

* ``index.html``: one file with no external resource: ranked tables (mean +- sd over seeds),
  a TC-vs-ARI scatter, metric heatmaps across datasets, results tables drawn by
  :func:`topiceval.pl.results_table`, enrichment bar charts (matplotlib, embedded
  as base64 PNG), per-model top-genes-per-topic tables, skipped cells and timings;
* ``summary.md``: the same tables without plots;
* ``scores.csv``, ``summary.csv``, ``cells.csv``, ``per_topic.csv``, ``pathways.csv``,
  ``results.json``: every number shown (:meth:`Results.write`).

Two orderings, named apart on the page: a model's *metric rank* on one dataset is its mean rank
over the ``rank_by`` metrics (higher is better for every score; a missing value ranks last); its
*placing* on a dataset is its position by metric rank there (1 = best), and the overall table
shows the *mean placing* over datasets. Warnings that qualify a number (a GSEA ranking of ties,
an undefined metric, low gene-set coverage) are listed under the table that shows it. Plots need
matplotlib (``pip install "topiceval[report]"``).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topiceval._utils import PathLike, as_path
from topiceval.errors import TopicEvalError
from topiceval.io import atomic_path, atomic_write
from topiceval.metrics.registry import main_keys, score_keys

from . import statistics
from .config import RANK_BY
from .runner import Results, readable

__all__ = [
    "CLUSTERING_ONLY_NOTE",
    "MAIN_METRICS",
    "METRIC_ORDER",
    "format_value",
    "overall_ranking",
    "prior_flags",
    "prior_overlaps",
    "clustering_only",
    "clustering_table",
    "ranked_table",
    "text_table",
    "write_report",
]

#: Columns of the ranked tables (all score keys are in the CSV files and the HTML's full table),
#: read from the metric registry: a new family's keys appear without an edit here.
MAIN_METRICS = main_keys()
METRIC_ORDER = score_keys()
_DPI = 100
#: Display names of the two orderings (see the module docstring).
METRIC_RANK = "metric rank"
PLACING = "placing"


# --------------------------------------------------------------------------- tables
def format_value(mean: float, sd: float = float("nan"), *, integer: bool = False) -> str:
    """``0.183 ± 0.004`` (3 decimals below 10, 1 below 100, none above; no sd for one seed).

    ``integer``: a count (``ORA_N``, ``GSEA_N``): a whole mean is printed without decimals
    (``8``, not ``8.000``), a mean over seeds with one.
    """
    if mean is None or pd.isna(mean):
        return "–"
    size = abs(mean)
    digits = 3 if size < 10 else (1 if size < 100 else 0)
    if integer:
        whole = float(mean).is_integer() and (sd is None or pd.isna(sd) or float(sd).is_integer())
        digits = 0 if whole else min(digits, 1)
    text = f"{mean:.{digits}f}"
    if sd is not None and not pd.isna(sd):
        text += f" ± {sd:.{digits}f}"
    return text


def clustering_only(results: Results) -> list[str]:
    """Models that are a cell embedding alone (registry ``kind="embedding"``, e.g. scVI, scGPT):
    scored on ARI / NMI only, and kept out of the ranked tables (see :func:`clustering_table`)."""
    return [str(m) for m in results.config.get("clustering_only") or []]


#: Why the clustering-only rows are not ranked with the topic models (shown in the report).
CLUSTERING_ONLY_NOTE = (
    "Cell embeddings without topics (clustering-only rows) are scored on ARI / NMI of their latent "
    "space alone, as the paper's clustering comparison (its Fig. 3) ranks them. They have no topic-gene "
    "matrix and no cell-topic matrix, so TC, TD, TQ, IP, ORA and GSEA do not exist for them: they are "
    "kept out of the ranked tables (a missing interpretability metric would otherwise rank them last) and "
    "shown here beside the topic models' ARI / NMI; the paired tests (comparisons.csv) include them for "
    "ARI and NMI only.")


def clustering_table(results: Results, dataset: str) -> pd.DataFrame:
    """ARI / NMI (mean, sample sd over seeds) of every model on one dataset, clustering-only rows
    included, best ARI first; column ``kind`` says which rows are clustering-only."""
    summary = results.summary()
    part = summary[(summary["dataset"] == dataset) & summary["metric"].isin(["ARI", "NMI"])]
    if part.empty:
        return pd.DataFrame()
    part = part.drop_duplicates(["model", "metric"])  # ARI / NMI are the same on every collection
    means = part.pivot(index="model", columns="metric", values="mean")
    sds = part.pivot(index="model", columns="metric", values="sd")
    only = set(clustering_only(results))
    table = pd.DataFrame(index=means.index)
    table["kind"] = ["clustering only" if m in only else "topic model" for m in table.index]
    table["n_seeds"] = part.groupby("model")["n"].max().reindex(table.index).astype(int)
    for metric in ("ARI", "NMI"):
        if metric in means.columns:
            table[metric], table[f"{metric}_sd"] = means[metric], sds[metric]
    return table.sort_values("ARI" if "ARI" in table.columns else "NMI", ascending=False, kind="stable")


def _metrics_present(summary: pd.DataFrame, wanted: Sequence[str]) -> list[str]:
    present = set(summary["metric"])
    return [m for m in wanted if m in present]


def ranked_table(results: Results, dataset: str, collection: str, *,
                 rank_by: Sequence[str] | None = None, metrics: Sequence[str] = METRIC_ORDER) -> pd.DataFrame:
    """Models of one dataset and collection, best first.

    Returns
    -------
    pandas.DataFrame
        Index: model. Columns: ``rank`` (mean rank over ``rank_by``, 1 = best), ``n_seeds``, and
        for each metric ``<metric>`` (mean) and ``<metric>_sd`` (sample sd over seeds).
    """
    rank_by = tuple(rank_by or results.config.get("rank_by", RANK_BY))
    summary = results.summary()
    part = summary[(summary["dataset"] == dataset) & (summary["collection"] == collection)]
    part = part[~part["model"].isin(clustering_only(results))]  # see clustering_table
    if part.empty:
        return pd.DataFrame()
    means = part.pivot(index="model", columns="metric", values="mean")
    sds = part.pivot(index="model", columns="metric", values="sd")
    counts = part.groupby("model")["n"].max()
    present = [m for m in metrics if m in means.columns]
    table = pd.DataFrame(index=means.index)
    ranking = [m for m in rank_by if m in means.columns]
    if ranking:
        ranks = means[ranking].rank(ascending=False, method="average", na_option="bottom")
        table["rank"] = ranks.mean(axis=1)
    else:
        table["rank"] = np.nan
    table["n_seeds"] = counts.reindex(table.index).astype(int)
    for m in present:
        table[m] = means[m]
        table[f"{m}_sd"] = sds[m]
    order = [m for m in _model_order(results) if m in table.index]
    table = table.loc[order]
    return table.sort_values("rank", kind="stable")


def overall_ranking(results: Results, collection: str, *, rank_by: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean over datasets of each model's per-dataset mean rank (1 = best).

    Returns
    -------
    pandas.DataFrame
        Index: model. Columns: ``mean_rank``, ``datasets`` (how many it ran on), ``wins``, and one
        column per dataset with the model's rank there.
    """
    rows = {}
    datasets = _dataset_order(results)
    for dataset in datasets:
        table = ranked_table(results, dataset, collection, rank_by=rank_by)
        if table.empty:
            continue
        position = table["rank"].rank(method="min")
        for model, value in position.items():
            rows.setdefault(model, {})[dataset] = value
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=[d for d in datasets if any(d in r for r in rows.values())])
    out = pd.DataFrame(index=frame.index)
    out["mean_rank"] = frame.mean(axis=1)
    out["datasets"] = frame.notna().sum(axis=1).astype(int)
    out["wins"] = (frame == 1).sum(axis=1).astype(int)
    out = pd.concat([out, frame], axis=1)
    return out.sort_values(["mean_rank", "wins"], ascending=[True, False], kind="stable")


def prior_flags(results: Results) -> pd.DataFrame:
    """Scores computed against the gene-set collection the model used as its prior (circular).

    A model trained with a gene-set prior (Spectra) records the prior's sha256 (``cells``
    column ``prior_sha256``); a score that needs gene sets (TC, TQ, ORA_*, GSEA_*) computed on a
    collection with the same file or content sha256 measures the prior, not the model.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, model, collection): ``seeds``, ``metrics`` (the flagged keys) and
        ``prior_sha256``; empty when nothing is circular.
    """
    from topiceval.evaluate import METRICS

    columns = ["dataset", "model", "collection", "seeds", "metrics", "prior_sha256"]
    cells, scores = results.cells, results.scores
    if cells.empty or scores.empty or "prior_sha256" not in cells:
        return pd.DataFrame(columns=columns)
    needs_sets = {key for spec in METRICS.values() if "gene_sets" in spec.needs for key in spec.keys}
    priors = {(c["dataset"], c["model"], int(c["seed"])): set(str(c["prior_sha256"]).split())
              for _, c in cells.iterrows() if isinstance(c["prior_sha256"], str) and c["prior_sha256"].strip()}
    records = results.config.get("gene_sets", {}) or {}
    flagged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (dataset, model, seed, collection, species), group in scores.groupby(
            ["dataset", "model", "seed", "collection", "species"], sort=False):
        hashes = priors.get((dataset, model, int(seed)))
        record = (records.get(collection) or {}).get(species) or {}
        same = hashes and hashes & {record.get("sha256"), record.get("content_sha256")} - {None}
        metrics = [m for m in group["metric"] if m in needs_sets]
        if not same or not metrics:
            continue
        entry = flagged.setdefault((dataset, model, collection), {"seeds": [], "metrics": [], "sha": set()})
        entry["seeds"].append(int(seed))
        entry["metrics"] += [m for m in metrics if m not in entry["metrics"]]
        entry["sha"] |= same
    rows = [[d, m, c, ", ".join(map(str, sorted(e["seeds"]))), ", ".join(e["metrics"]),
             " ".join(sorted(e["sha"]))] for (d, m, c), e in flagged.items()]
    return pd.DataFrame(rows, columns=columns)


def prior_overlaps(results: Results) -> pd.DataFrame:
    """Scored collections that share gene sets with a model's prior (partly circular scores).

    A model trained with a gene-set prior whose registry entry can load it (``ModelEntry.prior``)
    has, per scored collection, the number of its prior's sets that reappear there (``cells``
    column ``prior_overlap``: identical, or Jaccard >= 0.5 to a set of the collection;
    :func:`topiceval.gene_sets.overlap`). Its TC / TQ / ORA / GSEA against such a collection
    partly measure those sets.

    Returns
    -------
    pandas.DataFrame
        One row per (model, collection) with any similar set: ``datasets``, ``n_sets`` (of the
        prior), ``identical`` and ``similar`` (as ``"6"`` or a range ``"5-6"`` over datasets).
    """
    columns = ["model", "collection", "datasets", "n_sets", "identical", "similar"]
    cells = results.cells
    if cells.empty or "prior_overlap" not in cells:
        return pd.DataFrame(columns=columns)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for _, cell in cells[cells["status"] == "done"].iterrows():
        text = cell["prior_overlap"]
        if not isinstance(text, str) or not text.strip():
            continue
        for collection, counts in json.loads(text).items():
            if not counts.get("similar"):
                continue
            entry = found.setdefault((cell["model"], collection), {"datasets": [], "n_sets": set(), "identical": set(),
                                                                   "similar": set()})
            if cell["dataset"] not in entry["datasets"]:
                entry["datasets"].append(cell["dataset"])
            for key in ("n_sets", "identical", "similar"):
                entry[key].add(int(counts[key]))

    def span(values: set[int]) -> str:
        return str(min(values)) if min(values) == max(values) else f"{min(values)}-{max(values)}"

    rows = [[m, c, ", ".join(e["datasets"]), span(e["n_sets"]), span(e["identical"]), span(e["similar"])]
            for (m, c), e in found.items()]
    return pd.DataFrame(rows, columns=columns)


def _prior_notes(results: Results) -> list[str]:
    notes = [f"CIRCULAR: {r.model} on {r.dataset} used the {r.collection} gene sets as its prior (sha256 "
             f"{r.prior_sha256.split()[0][:12]}); its {r.metrics} on {r.collection} (seeds {r.seeds}) measure "
             "that prior, not the model" for r in prior_flags(results).itertuples()]
    notes += [f"PARTLY CIRCULAR: {r.similar} of the {r.n_sets} gene sets of {r.model}'s prior reappear in "
              f"{r.collection} ({r.identical} identical, the others with a Jaccard index of 0.5 or more; "
              f"datasets {r.datasets}); its TC / TQ / ORA / GSEA on {r.collection} partly measure those sets"
              for r in prior_overlaps(results).itertuples() if r.identical != r.n_sets]  # all: CIRCULAR above
    return notes


def _model_order(results: Results) -> list[str]:
    models = [m["name"] for m in results.config.get("models", [])]
    extra = [m for m in pd.unique(results.scores.get("model", pd.Series(dtype=str))) if m not in models]
    return models + extra


def _dataset_order(results: Results) -> list[str]:
    names = [d["name"] for d in results.config.get("datasets", [])]
    extra = [d for d in pd.unique(results.scores.get("dataset", pd.Series(dtype=str))) if d not in names]
    return names + extra


def _collection_order(results: Results) -> list[str]:
    return [c["name"] for c in results.config.get("collections", [])]


def count_metrics(results: Results) -> set[str]:
    """Metrics that are counts: every value a whole number, and named ``*_N`` or above 1."""
    scores = results.scores
    if scores.empty:
        return set()
    out = set()
    for metric, values in scores.groupby("metric")["value"]:
        finite = values.dropna().to_numpy(dtype=float)
        if finite.size and np.all(finite == np.round(finite)) and (str(metric).endswith("_N") or finite.max() > 1):
            out.add(str(metric))
    return out


def _display(table: pd.DataFrame, metrics: Sequence[str],
             counts: set[str] | frozenset[str] = frozenset()) -> tuple[list[str], list[list[str]]]:
    header = ["model", METRIC_RANK, *[m for m in metrics if m in table.columns], "seeds"]
    rows = []
    for model, row in table.iterrows():
        cells = [str(model), format_value(row["rank"]) if not pd.isna(row["rank"]) else "–"]
        cells += [format_value(row[m], row.get(f"{m}_sd"), integer=m in counts) for m in metrics if m in table.columns]
        cells.append(str(int(row["n_seeds"])))
        rows.append(cells)
    return header, rows


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns (for the terminal)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n'
            "</tbody></table></div>")


# --------------------------------------------------------------------------- plots
def _matplotlib() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise TopicEvalError('the report plots need matplotlib: pip install "topiceval[report]"') from None
    from matplotlib.figure import Figure

    return matplotlib, Figure


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _colors(models: Sequence[str]) -> dict[str, Any]:
    matplotlib, _ = _matplotlib()
    cmap = matplotlib.colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(models)}


def plot_scatter(results: Results, collection: str, x: str = "TC", y: str = "ARI") -> str | None:
    """TC (x) against ARI (y): one point per (dataset, model, seed); base64 PNG or ``None``."""
    _, Figure = _matplotlib()
    scores = results.scores
    part = scores[(scores["collection"] == collection) & scores["metric"].isin([x, y])]
    if part.empty:
        return None
    wide = part.pivot_table(index=["dataset", "model", "seed"], columns="metric", values="value").reset_index()
    if x not in wide or y not in wide:
        return None
    wide = wide.dropna(subset=[x, y])
    if wide.empty:
        return None
    models = [m for m in _model_order(results) if m in set(wide["model"])]
    datasets = [d for d in _dataset_order(results) if d in set(wide["dataset"])]
    colors = _colors(models)
    markers = dict(zip(datasets, "osD^vP*Xh<>p", strict=False))
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for (dataset, model), group in wide.groupby(["dataset", "model"], sort=False):
        ax.scatter(group[x], group[y], color=colors[model], marker=markers.get(dataset, "o"), s=36,
                   alpha=0.85, edgecolor="black", linewidth=0.3)
    ax.set_xlabel(f"{x} ({collection})")
    ax.set_ylabel(y)
    ax.set_title(f"{x} vs {y}: one point per dataset, model and seed")
    ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    # colour = model, marker = dataset; each legend says which it explains
    models_legend = ax.legend(handles=[Line2D([], [], color=colors[m], marker="o", linestyle="", label=m) for m in models],
                              title="model (colour)", fontsize=8, title_fontsize=8, loc="upper left",
                              bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.add_artist(models_legend)
    ax.legend(handles=[Line2D([], [], color="grey", marker=markers[d], linestyle="", label=d) for d in datasets],
              title="dataset (marker)", fontsize=8, title_fontsize=8, loc="lower left",
              bbox_to_anchor=(1.01, 0.0), frameon=False)
    return _png(fig)


def plot_heatmaps(results: Results, collection: str, metrics: Sequence[str] = MAIN_METRICS) -> str | None:
    """One heatmap per metric: models (rows) x datasets (columns), cells = mean over seeds."""
    _, Figure = _matplotlib()
    summary = results.summary()
    part = summary[summary["collection"] == collection]
    metrics = _metrics_present(part, metrics)
    if part.empty or not metrics:
        return None
    models = [m for m in _model_order(results) if m in set(part["model"])]
    datasets = [d for d in _dataset_order(results) if d in set(part["dataset"])]
    counts = count_metrics(results)
    ncols = min(2, len(metrics))  # two panels a row: about 1200 px wide, so text stays ~12 px on the page
    nrows = int(np.ceil(len(metrics) / ncols))
    width = max(3.4, 0.8 * len(datasets) + 2.2)
    height = max(2.4, 0.42 * len(models) + 1.4)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.6), layout="constrained")
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        grid = (part[part["metric"] == metric].pivot(index="model", columns="dataset", values="mean")
                .reindex(index=models, columns=datasets))
        values = grid.to_numpy(dtype=float)
        masked = np.ma.masked_invalid(values)
        image = ax.imshow(masked, aspect="auto", cmap="viridis")
        bar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
        bar.ax.tick_params(labelsize=8)
        if metric in counts:
            from matplotlib.ticker import MaxNLocator

            bar.locator = MaxNLocator(integer=True)
            bar.update_ticks()
        ax.set_xticks(range(len(datasets)), datasets, rotation=30, ha="right", fontsize=9)
        ax.set_yticks(range(len(models)), models, fontsize=9)
        ax.set_title(metric, fontsize=11)
        finite = values[np.isfinite(values)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                value = values[r, c]
                label = "–" if not np.isfinite(value) else format_value(value, integer=metric in counts)
                ax.text(c, r, label, ha="center", va="center", fontsize=10,
                        color="white" if np.isfinite(value) and value < middle else "black")
    fig.suptitle(f"Mean over seeds ({collection} gene sets). Each panel has its own colour scale, from "
                 "its lowest to its highest value (colour bar beside it); a dash: not run", fontsize=10)
    return _png(fig)


def plot_enrichment(results: Results, collection: str) -> str | None:
    """Enriched pathways per model and dataset: ORA_N and GSEA_N, mean +- sd over seeds."""
    _, Figure = _matplotlib()
    summary = results.summary()
    part = summary[(summary["collection"] == collection) & summary["metric"].isin(["ORA_N", "GSEA_N"])]
    if part.empty:
        return None
    datasets = [d for d in _dataset_order(results) if d in set(part["dataset"])]
    models = [m for m in _model_order(results) if m in set(part["model"])]
    fig = Figure(figsize=(min(3.6 * len(datasets), 16), 3.6), layout="constrained")
    metrics = [m for m in ("ORA_N", "GSEA_N") if m in set(part["metric"])]
    several = bool((part["n"] > 1).any()) if "n" in part else False
    shades = {"ORA_N": "#4c72b0", "GSEA_N": "#dd8452"}
    for i, dataset in enumerate(datasets):
        ax = fig.add_subplot(1, len(datasets), i + 1)
        sub = part[part["dataset"] == dataset]
        x = np.arange(len(models))
        width = 0.8 / len(metrics)
        for j, metric in enumerate(metrics):
            rows = sub[sub["metric"] == metric].set_index("model").reindex(models)
            # error bars only where there is a spread to show (sample sd over two or more seeds)
            spread = rows["sd"].where(rows["n"] > 1) if "n" in rows else rows["sd"] * np.nan
            ax.bar(x + (j - (len(metrics) - 1) / 2) * width, rows["mean"].fillna(0), width,
                   yerr=spread.fillna(0).to_numpy() if spread.notna().any() else None,
                   color=shades[metric], label=metric, capsize=2)
        ran = set(sub["model"])
        for k, model in enumerate(models):
            if model not in ran:
                ax.text(k, 0, "not run", rotation=90, ha="center", va="bottom", fontsize=6, color="grey")
        ax.set_xticks(x, models, rotation=45, ha="right", fontsize=9)
        ax.set_title(dataset, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of pathways
        if i == 0:
            ax.set_ylabel("distinct enriched pathways", fontsize=9)
            ax.legend(fontsize=8, frameon=False)
    fig.suptitle("Mean over seeds; " + ("error bars: sample sd over seeds" if several
                                        else "one seed, so no error bars"), fontsize=9)
    return _png(fig)


def plot_pathways(results: Results, dataset: str, collection: str, method: str = "GSEA", top: int = 8) -> str | None:
    """For each model (first seed), the pathways enriched in the most topics (bar length = topics)."""
    _, Figure = _matplotlib()
    part, models, seed = _pathway_panel(results, dataset, collection, method)
    if not models:
        return None
    from matplotlib.ticker import MaxNLocator

    ncols = min(2, len(models))  # two panels a row keep the pathway names legible on the page
    nrows = int(np.ceil(len(models) / ncols))
    fig = Figure(figsize=(5.6 * ncols, 2.6 * nrows + 0.4), layout="constrained")
    for i, model in enumerate(models):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        rows = part[part["model"] == model].head(top).iloc[::-1]
        ax.set_title(f"{model}", fontsize=10)
        if rows.empty:  # the model ran and was scored, but no pathway passed: say so
            ax.text(0.5, 0.5, f"none: no pathway enriched ({method})", ha="center", va="center",
                    fontsize=9, color="#555", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        labels = [_short_term(t) for t in rows["term"]]
        ax.barh(range(len(rows)), rows["n_topics"], color="#55a868", height=0.7)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_ylim(len(rows) - top - 0.5, len(rows) - 0.5)
        ax.tick_params(axis="x", labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # a number of topics
        ax.set_xlabel("topics enriched", fontsize=9)
    fig.suptitle(f"{dataset}: pathways enriched ({method}) in the most topics, seed {seed} "
                 "(full names in the table below)", fontsize=10)
    return _png(fig)


def plot_results_table(results: Results, dataset: str, collection: str) -> str | None:
    """The ranked models of one dataset as :func:`topiceval.pl.results_table` draws them; base64 PNG."""
    _, Figure = _matplotlib()
    from topiceval import pl

    table = ranked_table(results, dataset, collection)
    if table.empty or not any(m in table.columns for m in MAIN_METRICS):
        return None
    fig = Figure(figsize=(1.0 * len(MAIN_METRICS) + 3.0, 0.42 * len(table) + 1.4), layout="constrained")
    pl.results_table(results, dataset, collection, ax=fig.add_subplot())
    return _png(fig)


def _short_term(term: str, width: int = 42) -> str:
    return term if len(term) <= width else term[: width - 2] + "…"


def _pathway_panel(results: Results, dataset: str, collection: str, method: str) -> tuple[pd.DataFrame, list[str], int]:
    """Pathway rows of the first seed, and every model scored with ``method`` there (with or without hits)."""
    table = results.pathways
    scores = results.scores
    scored = scores[(scores["dataset"] == dataset) & (scores["collection"] == collection)
                    & (scores["metric"] == f"{method}_N")] if not scores.empty else scores
    part = table[(table["dataset"] == dataset) & (table["collection"] == collection)
                 & (table["method"] == method)] if not table.empty else table
    seeds = sorted(set(scored["seed"]) if not scored.empty else set()) or sorted(set(part["seed"]) if not part.empty else set())
    if not seeds:
        return part, [], 0
    seed = int(seeds[0])
    part = part[part["seed"] == seed] if not part.empty else part
    ran = set(scored.loc[scored["seed"] == seed, "model"]) if not scored.empty else set()
    ran |= set(part["model"]) if not part.empty else set()
    if part.empty and not ran:
        return part, [], seed
    return part, [m for m in _model_order(results) if m in ran], seed


def _pathway_names_html(results: Results, dataset: str, collection: str, method: str = "GSEA", top: int = 8) -> str:
    """The pathways of :func:`plot_pathways` with their full names (hover a shortened one)."""
    part, models, seed = _pathway_panel(results, dataset, collection, method)
    if not models:
        return ""
    rows = []
    for model in models:
        hits = part[part["model"] == model].head(top) if not part.empty else part
        if hits.empty:
            rows.append(f"<tr><td>{html.escape(model)}</td><td>none</td></tr>")
            continue
        items = ", ".join(
            f'<span title="{html.escape(str(t))}">{html.escape(_short_term(str(t)))}</span> ({int(n)})'
            for t, n in zip(hits["term"], hits["n_topics"], strict=True))
        rows.append(f"<tr><td>{html.escape(model)}</td><td>{items}</td></tr>")
    return (f'<details class="pathways"><summary>pathway names ({method}, seed {seed}; topics in brackets; '
            "hover a shortened name for the full one)</summary><table class=\"pathways\"><thead><tr>"
            "<th>model</th><th>pathways</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></details>")


# --------------------------------------------------------------------------- documents
def _settings_rows(results: Results) -> dict[str, tuple[list[str], list[list[str]]]]:
    config = results.config
    datasets = []
    for d in config.get("datasets_prepared", []):
        info = d.get("info", {})
        pre = info.get("preprocessing") or {}
        if d.get("skip_reason"):
            prep = "–"
        elif d["values"] == "counts":
            pre = pre if isinstance(pre, dict) else {}
            hvg = pre.get("highly_variable_genes") or {}
            total = (pre.get("normalize_total") or {}).get("target_sum")
            wanted, kept = hvg.get("n_top_genes"), hvg.get("n_selected", d["n_genes"])
            if wanted is None:
                genes = "all genes"
            elif kept < wanted:
                genes = f"all {kept} genes (fewer than the {wanted} HVG asked for)"
            else:
                genes = f"{kept} HVG (seurat)"
            prep = ", ".join((f"normalise to {total:g}" if total else "normalise", "log1p", genes))
        else:
            prep = f"as distributed ({d['values']})"
        datasets.append([d["name"], d["species"], str(d["n_cells"]), str(d["n_genes"]), str(d["n_types"]),
                         prep, d.get("skip_reason") or "", info.get("citation", "")])
    models = []
    implementations = config.get("implementations") or {}
    for m in config.get("models", []):
        options = ", ".join(f"{k}={v}" for k, v in (m.get("options") or {}).items())
        record = implementations.get(m["name"]) or {}
        versions = ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items() if k != "topiceval")
        implementation = "; ".join(part for part in (record.get("description", ""), versions) if part) or "–"
        models.append([m["name"], implementation, _or_default(m.get("n_topics")), _or_default(m.get("epochs")),
                       m.get("layer") or "model default", options])
    collections = []
    for c in config.get("collections", []):
        for species, record in (config.get("gene_sets", {}).get(c["name"], {}) or {}).items():
            spec = record.get("spec")
            spec = " + ".join(map(str, spec)) if isinstance(spec, list | tuple) else str(spec)
            collections.append([c["name"], species, spec, str(record.get("n_sets")),
                                str(record.get("content_sha256", ""))[:12], ", ".join(c["metrics"])])
    options = [[k, str(v)] for k, v in sorted((config.get("evaluation") or {}).items())]
    return {
        "datasets": (["dataset", "species", "cells", "genes", "types", "preprocessing", "skipped", "citation"], datasets),
        "models": (["model", "implementation", "topics K", "epochs", "input", "options"], models),
        "collections": (["collection", "species", "gene sets", "sets", "content sha256", "metrics"], collections),
        "options": (["evaluation option", "value"], options or [["(all defaults)", ""]]),
    }


def _cell_warnings(results: Results, dataset: str, collection: str) -> list[tuple[str, str]]:
    """``(model and seeds, text)`` of every warning recorded for the numbers of one table: the
    scoring warnings of this collection and the training warnings of the dataset's cells."""
    cells = results.cells
    if cells.empty or "warnings" not in cells:
        return []
    found: dict[tuple[str, str], list[int]] = {}
    part = cells[(cells["dataset"] == dataset) & (cells["status"] == "done")]
    for row in part.itertuples():
        text = row.warnings if isinstance(row.warnings, str) else ""
        for line in filter(None, text.split("\n")):
            if line.startswith("["):
                name, _, message = line[1:].partition("] ")
                if name != collection:
                    continue
            else:
                message = line
            found.setdefault((str(row.model), message), []).append(int(row.seed))
    out = []
    for model in _model_order(results):
        for (name, message), seeds in found.items():
            if name == model:
                label = f"{model} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, sorted(set(seeds))))})"
                out.append((label, message))
    return out


def _warnings_html(cautions: Sequence[tuple[str, str]]) -> str:
    if not cautions:
        return ""
    items = "".join(f"<li><b>{html.escape(who)}</b>: {html.escape(text)}</li>" for who, text in cautions)
    return f'<ul class="warnings" title="warnings recorded while these numbers were computed">{items}</ul>'


def _partial_note(results: Results) -> str:
    """A banner for a report written from the cached cells while others were unfinished."""
    cells = results.cells
    if cells.empty or not (cells["status"] == "missing").any():
        return ""
    counts = cells["status"].value_counts()
    missing = cells[cells["status"] == "missing"]
    per_model = ", ".join(f"{m} {n}" for m, n in missing.groupby("model", sort=False).size().items())
    return (f"PARTIAL REPORT: written from the cache while the run was unfinished; {int(counts.get('done', 0))} "
            f"of {len(cells) - int(counts.get('skipped', 0))} cells that can run are done, "
            f"{len(missing)} are missing ({per_model}); every table below covers the finished cells only, and "
            "the missing ones are listed under Skipped, failed and missing.")


def _carried_note(results: Results) -> str:
    """What a report says of the cells carried over from a published report (``published`` of
    :func:`~topiceval.leaderboard.runner.run`): how many, and the seed pairs whose topic stability
    could not be computed (one cell carried, the other from the cache)."""
    cells = results.cells
    if cells.empty or "source" not in cells:
        return ""
    done = cells[cells["status"] == "done"]
    carried = done["source"] == "published"
    if not carried.any():
        return ""
    lost = 0
    for _, group in done.groupby(["dataset", "model"], sort=False):
        n_old = int((group["source"] == "published").sum())
        lost += n_old * (len(group) - n_old)
    per_model = ", ".join(f"{m} {n}" for m, n in done[carried].groupby("model", sort=False).size().items())
    return (f"{int(carried.sum())} of the {len(done)} finished cells ({per_model}) are carried over from a "
            "published report of this leaderboard (source = published in cells.csv): the cache of the machine that "
            "wrote this report lacked them, so their numbers, times and warnings are the published ones, not "
            "recomputed here (carried only under the same train key, which hashes the data, the training settings, "
            "the seed and the versions of topiceval and of the model's libraries, and the same scoring)."
            + (f" Topic stability leaves out {lost} seed pair(s) of one carried cell and one computed here: a "
               "report holds no topic-gene matrix to match." if lost else ""))


def _or_default(value: Any) -> str:
    return "model default" if value is None else str(value)


def _skipped_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    cells = results.cells
    if cells.empty:
        return ["dataset", "model", "seeds", "status", "reason"], []
    bad = cells[cells["status"] != "done"]
    rows = []
    for (dataset, model, status, reason), group in bad.groupby(["dataset", "model", "status", "reason"], sort=False):
        rows.append([dataset, model, ", ".join(str(s) for s in sorted(group["seed"])), status, reason])
    return ["dataset", "model", "seeds", "status", "reason"], rows


def _timing_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    cells = results.cells
    done = cells[cells["status"] == "done"] if not cells.empty else cells
    datasets = [d for d in _dataset_order(results) if not done.empty and d in set(done["dataset"])]
    header = ["model", *datasets]
    rows = []
    for model in _model_order(results):
        sub = done[done["model"] == model] if not done.empty else done
        if sub.empty:
            continue
        row = [model]
        for dataset in datasets:
            values = sub.loc[sub["dataset"] == dataset, "train_s"]
            row.append("–" if values.empty else f"{values.mean():.1f}")
        rows.append(row)
    return header, rows


def _model_time_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """Measured seconds per model, summed over its finished cells: fit (``config.json``), scoring
    (each score's timing record; cells scored before it existed are counted apart), total."""
    cells = results.cells
    header = ["model", "cells done", "fit s", "scoring s", "total s", "mean s per cell"]
    if cells.empty:
        return header, []
    done = cells[cells["status"] == "done"]

    def row(label: str, sub: pd.DataFrame, *, per_model: bool) -> list[str]:
        fit = float(sub["train_s"].sum())
        score = sub["score_s"] if "score_s" in sub else pd.Series(np.nan, index=sub.index)
        known = score.notna()
        scored = float(score[known].sum())
        scoring = f"{scored:.0f}"
        if per_model:  # a model's row says which of its cells lack a scoring time
            scoring = (scoring if known.any() else "–") + (
                f" ({int((~known).sum())} cell(s) scored before scoring times were recorded)" if (~known).any() else "")
        total = fit + scored
        return [label, str(len(sub)), f"{fit:.0f}", scoring, f"{total:.0f}",
                f"{total / len(sub):.0f}" if known.all() else "–"]

    rows = [row(model, done[done["model"] == model], per_model=True)
            for model in _model_order(results) if (done["model"] == model).any()]
    if len(rows) > 1:
        rows.append(row("all models", done, per_model=False))
    return header, rows


def _history_rows(results: Results) -> tuple[str, list[str], list[list[str]]]:
    """The parts the run took (the cache's ledger, :mod:`topiceval.leaderboard.history`): a
    sentence with the totals, and one row per part."""
    from topiceval.leaderboard.history import summarise

    parts = list(results.config.get("history") or [])
    header = ["part", "started (UTC)", "ended (UTC)", "wall s", "cells finished", "trained", "failed", "backend",
              "how it ended"]
    if not parts:
        return "", header, []
    rows = []
    for i, p in enumerate(parts, 1):
        rows.append([str(i), str(p["started"]).replace("T", " ").replace("+00:00", ""),
                     str(p["ended"]).replace("T", " ").replace("+00:00", ""), f"{p['wall_s']:.0f}",
                     str(p["finished"]), str(p["trained"]), str(p["failed"]),
                     f"{p.get('backend') or ''} x {p.get('n_jobs') or ''}",
                     "finished" if p["complete"] else "no end record (stopped, or still running): wall up to its last record"])
    total = summarise(parts)
    cells = results.cells
    where = (" and in the published report whose cells this one carries over"
             if "source" in cells and (cells["source"] == "published").any() else "")
    text = (f"Wall time of the whole run: {total['wall_s']:.0f} s ({total['wall_s'] / 3600:.1f} h) summed over "
            f"{total['parts']} part(s) recorded in the cache's ledger{where}, {total['trained']} cell(s) trained in them"
            + (f"; {total['incomplete']} part(s) have no end record (stopped, or still running), so the sum is a lower bound" if total["incomplete"] else "")
            + ". Parts run before the ledger existed, or with another cache, are not listed.")
    return text, header, rows


def _top_genes_html(results: Results, max_topics: int | None) -> str:
    per_topic = results.per_topic
    if per_topic.empty:
        return "<p>No per-topic results.</p>"
    collection = _collection_order(results)[0] if _collection_order(results) else per_topic["collection"].iloc[0]
    part = per_topic[per_topic["collection"] == collection]
    blocks = []
    for dataset in _dataset_order(results):
        sub = part[part["dataset"] == dataset]
        if sub.empty:
            continue
        seed = int(sub["seed"].min())
        blocks.append(f"<h3>{html.escape(dataset)}</h3>")
        for model in _model_order(results):
            rows = sub[(sub["model"] == model) & (sub["seed"] == seed)].sort_values("topic")
            if rows.empty:
                continue
            if max_topics is not None:
                rows = rows.head(max_topics)
            columns = [c for c in ("TC", "ORA_N", "GSEA_N", "TD_exclusive_share") if c in rows.columns]
            header = ["topic", "top genes", *columns]
            body = [[str(int(r["topic"])), str(r["top_genes"]), *[format_value(r[c]) for c in columns]]
                    for _, r in rows.iterrows()]
            blocks.append(f"<details><summary>{html.escape(model)}: top genes of {len(body)} topics "
                          f"(seed {seed}, per-topic values on {html.escape(collection)})</summary>"
                          + _html_table(header, body, "genes") + "</details>")
    return "\n".join(blocks)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left}
th{background:#f3f3f3}tbody tr:nth-child(even){background:#fafafa}table.genes td:nth-child(2){font-family:monospace}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
.plot{overflow-x:auto}@media (max-width:760px){.plot img{max-width:none;width:760px}}details{margin:.3em 0}summary{cursor:pointer}
.note{background:#fff8e1;border-left:4px solid #f0c000;padding:.5em 1em;white-space:pre-wrap}
code{background:#f3f3f3;padding:0 .2em}
ul.warnings{background:#fff8e1;border-left:4px solid #f0c000;margin:.2em 0 1em;padding:.4em 1em .4em 2em;font-size:.85em}
table.pathways td:nth-child(2){font-size:.9em}span[title]{border-bottom:1px dotted #888;cursor:help}
.scroll{overflow-x:auto}table.ranked td,table.full td,table.overall td{white-space:nowrap}
"""


def _main_collections(results: Results) -> list[str]:
    present = set(results.scores["collection"]) if not results.scores.empty else set()
    return [c for c in _collection_order(results) if c in present]


def leaderboard_text(results: Results, *, metrics: Sequence[str] = MAIN_METRICS) -> str:
    """The ranked tables of every dataset and collection as plain text (what the CLI prints)."""
    parts = []
    for collection in _main_collections(results):
        for dataset in _dataset_order(results):
            table = ranked_table(results, dataset, collection)
            if table.empty:
                continue
            header, rows = _display(table, metrics, count_metrics(results))
            parts.append(f"{dataset} ({collection} gene sets)\n" + text_table(header, rows))
    return "\n\n".join(parts)


def write_report(results: Results, folder: PathLike, *, title: str | None = None,
                 max_topics: int | None = None, plots: bool = True) -> dict[str, Path]:
    """Write the HTML page, the Markdown summary and the CSV / JSON files into ``folder``.

    Parameters
    ----------
    results
        What :func:`topiceval.leaderboard.run` returned (or :meth:`Results.read`).
    folder
        Output folder (created).
    title
        Page title (default: the configuration's name).
    max_topics
        Show at most this many topics per model in the top-genes tables (``None``: all).
    plots
        Draw the plots (needs matplotlib).

    Returns
    -------
    dict
        ``{"html": path, "markdown": path, "files": [paths of CSV / JSON]}``.
    """
    target = as_path(folder)
    target.mkdir(parents=True, exist_ok=True)
    files = results.write(target)
    config = results.config
    title = title or config.get("name", "topiceval leaderboard")
    settings = _settings_rows(results)
    collections = _main_collections(results)
    datasets = _dataset_order(results)
    wall = config.get("wall_s")
    facts = [
        f"seeds: {', '.join(str(s) for s in config.get('seeds', []))}",
        f"config sha256: {str(config.get('config_sha256', ''))[:16]}",
        f"run: {config.get('started', '')}, backend {config.get('backend_used', '')} with "
        f"{config.get('n_jobs_used', '')} job(s), {wall:.0f} s wall" if wall is not None else "",
        f"topiceval {config.get('versions', {}).get('topiceval', '?')}",
    ]
    facts = [f for f in facts if f]
    partial = _partial_note(results)
    carried = _carried_note(results)
    notes = str(config.get("notes", "")).strip()
    run_notes = list(config.get("notes_run", [])) + _prior_notes(results)

    md: list[str] = [f"# {title}", ""]
    if config.get("description"):
        md += [str(config["description"]).strip(), ""]
    md += ["- " + f for f in facts] + [""]
    if partial:
        md += [f"**{partial}**", ""]
    if carried:
        md += [carried, ""]
    if notes:
        md += ["## Notes", "", notes, ""]
    if run_notes:
        md += ["- " + n for n in run_notes] + [""]
    rank_by = ", ".join(config.get("rank_by", RANK_BY))
    counts = count_metrics(results)
    overall_text = (f"A model's {PLACING} on a dataset is its position there by {METRIC_RANK} (1 = best); "
                    f"the {METRIC_RANK} is the mean of its ranks on {rank_by}. Mean {PLACING}: the mean "
                    "over datasets; wins: datasets placed first.")
    md += ["## Overall ranking", "", overall_text, ""]
    htm: list[str] = [f"<h1>{html.escape(title)}</h1>"]
    if config.get("description"):
        htm.append(f"<p>{html.escape(str(config['description']).strip())}</p>")
    htm.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>")
    if partial:
        htm.append(f'<p class="note"><b>{html.escape(partial)}</b></p>')
    if carried:
        htm.append(f'<p class="note">{html.escape(carried)}</p>')
    if notes:
        htm.append(f'<h2>Notes</h2><div class="note">{html.escape(notes)}</div>')
    if run_notes:
        htm.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in run_notes) + "</ul>")
    htm.append(f"<h2>Overall ranking</h2><p>{html.escape(overall_text)}</p>")
    for collection in collections:
        overall = overall_ranking(results, collection)
        if overall.empty:
            continue
        header = ["model", f"mean {PLACING}", "datasets", "wins", *[f"{PLACING} on {c}" for c in overall.columns[3:]]]
        rows = [[m, format_value(r["mean_rank"]), str(int(r["datasets"])), str(int(r["wins"])),
                 *[("–" if pd.isna(r[c]) else f"{r[c]:.0f}") for c in overall.columns[3:]]]
                for m, r in overall.iterrows()]
        md += [f"**{collection} gene sets**", "", _markdown_table(header, rows), ""]
        htm.append(f"<h3>{html.escape(collection)} gene sets</h3>" + _html_table(header, rows, "overall"))

    md += ["## Results per dataset", "", (f"Mean ± sample sd over seeds; `{METRIC_RANK}` is the model's mean rank over "
                                          f"{rank_by} on this dataset (1 = best). Warnings that qualify a number "
                                          "follow its table. All metrics are in `summary.csv` (per seed: `scores.csv`)."), ""]
    htm.append(f"<h2>Results per dataset</h2><p>Mean ± sample sd over seeds; <code>{METRIC_RANK}</code> is the "
               f"model's mean rank over {html.escape(rank_by)} on this dataset (1 = best). Warnings that qualify "
               "a number are listed under its table. The full tables list every metric.</p>")
    for dataset in datasets:
        blocks_md, blocks_html = [], []
        for collection in collections:
            table = ranked_table(results, dataset, collection)
            if table.empty:
                continue
            header, rows = _display(table, MAIN_METRICS, counts)
            cautions = _cell_warnings(results, dataset, collection)
            blocks_md += [f"**{collection} gene sets**", "", _markdown_table(header, rows), ""]
            blocks_md += [f"- warning, {m}: {t}" for m, t in cautions] + ([""] if cautions else [])
            full_header, full_rows = _display(table, METRIC_ORDER, counts)
            blocks_html.append(
                f"<h4>{html.escape(collection)} gene sets</h4>" + _html_table(header, rows, f"ranked ranked-{dataset}-{collection}")
                + _warnings_html(cautions)
                + f"<details><summary>all metrics</summary>{_html_table(full_header, full_rows, 'full')}</details>")
        if blocks_md:
            md += [f"### {dataset}", "", *blocks_md]
            htm.append(f"<h3>{html.escape(dataset)}</h3>" + "".join(blocks_html))

    only = [m for m in clustering_only(results) if not results.scores.empty and m in set(results.scores["model"])]
    if only:
        md += ["## Clustering-only rows", "", CLUSTERING_ONLY_NOTE, ""]
        htm.append(f"<h2>Clustering-only rows</h2><p>{html.escape(CLUSTERING_ONLY_NOTE)}</p>")
        for dataset in datasets:
            table = clustering_table(results, dataset)
            if table.empty or not (table["kind"] == "clustering only").any():
                continue
            header = ["model", "kind", "ARI", "NMI", "seeds"]
            rows = [[m, r["kind"], *[format_value(r.get(k, np.nan), r.get(f"{k}_sd", np.nan)) for k in ("ARI", "NMI")],
                     str(int(r["n_seeds"]))] for m, r in table.iterrows()]
            md += [f"### {dataset}", "", _markdown_table(header, rows), ""]
            htm.append(f"<h3>{html.escape(dataset)}</h3>" + _html_table(header, rows, "clustering"))

    if plots:
        htm.append("<h2>Plots</h2>")
        for collection in collections:
            for label, image in (
                (f"TC vs ARI ({collection})", plot_scatter(results, collection)),
                (f"Metric heatmaps across datasets ({collection})", plot_heatmaps(results, collection)),
                (f"Enriched pathways per model ({collection})", plot_enrichment(results, collection)),
            ):
                if image is not None:
                    htm.append(f"<h3>{html.escape(label)}</h3><div class=\"plot\"><img alt=\"{html.escape(label)}\" "
                               f"src=\"data:image/png;base64,{image}\"></div>")
            for dataset in datasets:
                image = plot_results_table(results, dataset, collection)
                if image is not None:
                    label = f"Results table on {dataset} ({collection})"
                    htm.append(f"<h3>{html.escape(label)}</h3><div class=\"plot\"><img alt=\"{html.escape(label)}\" "
                               f"src=\"data:image/png;base64,{image}\"></div>")
                image = plot_pathways(results, dataset, collection)
                if image is not None:
                    label = f"Most enriched pathways on {dataset} ({collection}, GSEA)"
                    htm.append(f"<h3>{html.escape(label)}</h3><div class=\"plot\"><img alt=\"{html.escape(label)}\" "
                               f"src=\"data:image/png;base64,{image}\"></div>" + _pathway_names_html(results, dataset, collection))

    stats_md, stats_html = statistics.report_sections(results, plots=plots)
    md += stats_md
    htm += stats_html
    from . import claims  # the scE2TM paper's claims, point by point (only when scE2TM ran)

    claims_md, claims_html = claims.report_sections(results)
    md += claims_md
    htm += claims_html
    if claims_md:
        with atomic_path(target / "claims.csv", suffix=".csv") as tmp:
            claims.paper_claims(results).to_csv(tmp, index=False, float_format="%.10g")
        files = [*files, target / "claims.csv"]
    htm.append("<h2>Top genes per topic</h2>" + _top_genes_html(results, max_topics))

    header, rows = _skipped_rows(results)
    title_bad = "Skipped, failed and missing" if partial else "Skipped and failed"
    md += [f"## {title_bad}", ""]
    htm.append(f"<h2>{title_bad}</h2>")
    if rows:
        md += [_markdown_table(header, rows), ""]
        htm.append(_html_table(header, rows, "skipped"))
    else:
        md += ["None: every combination ran.", ""]
        htm.append("<p>None: every combination ran.</p>")

    md += ["## What was run", ""]
    htm.append("<h2>What was run</h2>")
    for key, label in (("datasets", "Datasets"), ("models", "Models"), ("collections", "Gene sets"),
                       ("options", "Evaluation options")):
        header, rows = settings[key]
        md += [f"**{label}**", "", _markdown_table(header, rows), ""]
        htm.append(f"<h3>{label}</h3>" + _html_table(header, rows, key))
    header, rows = _timing_rows(results)
    if rows:
        md += [("**Training time** (wall seconds of the fit, mean over seeds, as recorded in each run's "
                "config.json; cells ran in parallel on a shared machine)"), "",
               _markdown_table(header, rows), ""]
        htm.append("<h3>Training time (wall seconds of the fit, mean over seeds)</h3>" + _html_table(header, rows, "timing"))
    header, rows = _model_time_rows(results)
    if rows:
        text = ("Measured time per model (wall seconds, summed over its finished cells: the fit as recorded in "
                "each run's config.json, scoring as recorded with each score; cells ran in parallel on a shared "
                "machine, so these are not CPU costs)")
        md += [f"**{text}**", "", _markdown_table(header, rows), ""]
        htm.append(f"<h3>{html.escape(text)}</h3>" + _html_table(header, rows, "model-time"))
    text, header, rows = _history_rows(results)
    if rows:
        md += ["**Parts the run took**", "", text, "", _markdown_table(header, rows), ""]
        htm.append(f"<h3>Parts the run took</h3><p>{html.escape(text)}</p>" + _html_table(header, rows, "history"))
    names = ", ".join(f"`{p.name}`" for p in files)
    md += ["## Files", "", f"Every number above: {names}. Plots and top genes per topic: `index.html`.", ""]
    htm.append("<h2>Files</h2><p>Every number on this page is in " + ", ".join(
        f'<a href="{html.escape(p.name)}">{html.escape(p.name)}</a>' for p in files) + ".</p>")

    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(htm) + "\n</body></html>\n")
    html_path = target / "index.html"
    md_path = target / "summary.md"
    with atomic_write(html_path) as handle:
        handle.write(page)
    with atomic_write(md_path) as handle:
        handle.write("\n".join(md).rstrip() + "\n")
    for path in (html_path, md_path, *files):
        readable(path)
    return {"html": html_path, "markdown": md_path, "files": files}
