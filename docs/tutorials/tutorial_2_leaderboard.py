"""
2. Compare models on two datasets
=================================

A leaderboard trains every model of a configuration on every dataset and seed, scores each with
:func:`topiceval.evaluate`, and writes a report. Here: NMF and LDA, 8 topics, on two count
datasets of the shared data folder, Pollen et al. 2014 (299 human cells, 11 types) and Ting et al.
2014 (149 mouse cells, 7 types), scored on the Hallmark collection (the mouse orthologs for Ting).
A small schedule (1000 highly variable genes, two seeds) keeps it to a minute or two on 2 cores; a
real comparison uses the paper's 5000 genes, K = 100 and more seeds (``reports/leaderboard``).
"""

# %%
# The configuration
# -----------------
# The same TOML that ``topiceval benchmark --config FILE`` reads.
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt

import topiceval.pl as pl
from topiceval.leaderboard import load_config, run, statistics, write_report
from topiceval.leaderboard.report import overall_ranking, ranked_table

work = Path(tempfile.mkdtemp(prefix="topiceval-tutorial-"))
(work / "leaderboard.toml").write_text('''
name = "tutorial leaderboard"
seeds = [0, 1]
datasets = ["pollen", "ting"]
[preprocess]
n_top_genes = 1000
[train]
models = ["nmf", "lda"]
n_topics = 8
[models.nmf]
epochs = 100
[models.lda]
epochs = 10
[[collections]]
name = "hallmark"
human = "hallmark"
mouse = "mouse_hallmark"
metrics = ["tc", "td", "tq", "ip", "ora", "clustering"]
[run]
backend = "sequential"
''')
config = load_config(work / "leaderboard.toml")

# %%
# Run it
# ------
# Every trained model and score is cached under a hash of its inputs (here in a fresh folder): a
# rerun, or a run killed halfway, recomputes nothing that finished.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    results = run(config, cache=work / "cache", progress=False)
results.cells[["dataset", "model", "seed", "status", "train_s"]]

# %%
# Read the results
# ----------------
# Per dataset, models are ranked by their mean rank over TQ, IP, ORA_Q, GSEA_Q, ARI and NMI
# (those present; GSEA was not run here). Values are means over seeds, with the sample sd beside
# them once there are several seeds.
ranked_table(results, "pollen", "hallmark")[["rank", "TC", "TD", "TQ", "IP", "ORA_Q", "ARI", "NMI"]]

# %%
# The same table as a figure, in the manner of scib-metrics: circle size and colour scaled within
# each column, so the best model of a metric has the largest circle.
fig, axes = plt.subplots(1, 2, figsize=(14, 2.8), layout="constrained")
pl.results_table(results, "pollen", "hallmark", ax=axes[0])
pl.results_table(results, "ting", "hallmark", ax=axes[1])
plt.show()

# %%
# Overall, the mean over datasets of each model's rank on a dataset:
overall_ranking(results, "hallmark")

# %%
# How to read it. With two seeds and two datasets, a rank difference says little on its own: the
# sd over seeds tells whether a gap between two models exceeds the training noise, and a winner
# should win on most datasets (``wins``), not on the mean alone. Also compare what each metric
# measures: a model can cluster cells well (ARI, NMI) with incoherent topics (TC), which is what
# the paper's TQ and enrichment scores reveal.
#
# Statistics
# ----------
# **Topic stability**: the topics of two seeds matched one-to-one (Hungarian algorithm on the
# cosine similarity of their topic-gene rows); 1 means the two seeds found the same topics. A
# model whose topics change with the seed gives topics that should not be over-interpreted.
results.stability

# %%
pl.stability(results)
plt.show()

# %%
# **Paired tests** (``comparisons.csv``): for every metric and pair of models, the Wilcoxon
# signed-rank test over the (dataset, seed) pairs both completed, with Holm-adjusted p-values per
# metric. With 4 pairs the smallest two-sided p-value the test can give is 2 / 2**4 = 0.125, so
# nothing here can be significant: "A beats B" needs more datasets and seeds, and the p-value says
# how much evidence a difference has, not how large it is (``mean_diff`` says that).
statistics.comparisons(results).query("metric in ['TQ', 'IP', 'ARI']")

# %%
# **Friedman test** over the models' per-dataset ranks with the Nemenyi critical-difference
# diagram (Demšar 2006) needs at least three models on two datasets: the report draws it for
# ``reports/leaderboard`` (six models), not for the two models here.
#
# The report
# ----------
# ``write_report`` writes a self-contained ``index.html`` (tables, plots, the top genes of every
# topic), ``summary.md`` and every number as CSV.
paths = write_report(results, work / "report")
print(sorted(p.name for p in (work / "report").iterdir()))
print((work / "report" / "summary.md").read_text()[:600])
