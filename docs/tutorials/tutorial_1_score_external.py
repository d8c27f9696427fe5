"""
1. Score a model trained elsewhere
==================================

A topic model run outside topiceval (a cNMF run, an scvi-tools LDVAE, a plain NMF) leaves two
matrices: the topic-gene weights and the cell-topic weights. Put them into an AnnData the scverse
way (genes x topics in ``varm``, cells x topics in ``obsm``), score them, store the result in the
AnnData and look at it.

The model here is the example that ships with topiceval: a 10-topic NMF of the Yan et al. 2013
human preimplantation embryo data (90 cells, 4656 genes, 6 developmental stages), as files, the
way any external tool would leave them.
"""

# %%
# Read the files
# --------------
# The topic-gene table (topics x genes, a header of gene symbols), the cell-topic table and one
# label per cell. cNMF writes the same two tables (``*.gene_spectra_score*.txt`` and
# ``*.usages*.txt``, tab-separated): read them with ``sep="\t"``.
import warnings

import anndata
import matplotlib.pyplot as plt
import pandas as pd

import topiceval as te
import topiceval.pl as pl
from topiceval.examples import EXAMPLES

example = EXAMPLES["yan_nmf"]
spectra = pd.read_csv(example.topic_gene, index_col=0)  # topics x genes
usage = pd.read_csv(example.cell_topic, index_col=0)  # cells x topics
stages = example.labels.read_text().split()
print(spectra.shape, usage.shape, len(stages))

# %%
# Put them into an AnnData
# ------------------------
# Your AnnData usually holds the expression matrix already; this one only holds the cells and the
# genes. The keys are yours to choose: name them when you score.
adata = anndata.AnnData(obs=pd.DataFrame({"stage": stages}, index=usage.index),
                        var=pd.DataFrame(index=spectra.columns))
adata.varm["nmf"] = spectra.T.to_numpy()  # genes x topics
adata.obsm["X_nmf"] = usage.to_numpy()  # cells x topics
adata

# %%
# Score it
# --------
# TC, TD, TQ and IP by default; ORA and GSEA when asked for. The shipped Reactome collection is the
# example's reference. ``gsea_n_perm`` is lowered from 1000 to keep the tutorial fast; the same
# seed gives the same numbers.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # coverage warnings: many embryo genes are in no Reactome set
    result = te.evaluate(adata, topic_gene_key="nmf", cell_topic_key="X_nmf", labels="stage",
                         gene_sets="reactome", metrics="tc,td,tq,ip,ora,gsea", gsea_n_perm=200, seed=0)
result.scores

# %%
# Per topic: its top genes, TC, the share of its top genes no other topic has, its cells' purity
# and its enriched pathways.
result.per_topic[["top_genes", "TC", "TD_exclusive_share", "IP_purity", "ORA_N", "GSEA_N"]]

# %%
# Everything that changes a number is in ``result.config`` (options, gene-set file and sha256,
# coverage), and ``config_sha256`` hashes it:
print(result.config["config_sha256"], result.config["gene_sets"]["source"])

# %%
# Keep the result with the data
# -----------------------------
# ``to_uns`` stores scores and tables in ``adata.uns["topiceval"]``; they survive ``write_h5ad``.
result.to_uns(adata)
te.get_table(adata, "gsea").sort_values("fdr").head()

# %%
# Look at it
# ----------
# Every score at once:
pl.metrics(result)

# %%
# The top genes of each topic, each row scaled to its largest weight: a diagonal block structure
# means distinct topics (TD = 0.98 here).
pl.top_genes(adata, n_genes=4, topic_gene_key="nmf")

# %%
# Topics against the developmental stages: the mean topic weight of each stage's cells, topics
# ordered by their best-matching stage.
pl.cell_types(adata, "stage", cell_topic_key="X_nmf")

# %%
# The pathways each topic is enriched for (GSEA): colour NES, size the leading-edge share, a
# black edge where FDR <= 0.01. Read from the AnnData, as a notebook would after ``read_h5ad``.
pl.enrichment(adata, "gsea", n_terms=12)

# %%
# ORA of the top genes: colour -log10 adjusted p, size the overlap.
pl.enrichment(result, "ora", n_terms=8)

# %%
# The running sum of the most significant (topic, pathway) pair, with the set's genes as ticks
# and the leading edge shaded. The ES drawn is the table's ES.
best = result.details["gsea"].sort_values("fdr").iloc[0]
ax = pl.gsea_running_sum(adata, "reactome", int(best["topic"]), best["term"], topic_gene_key="nmf")
print(f"ES drawn {ax.es:.4f}, ES in the table {best['es']:.4f}")
plt.show()

# %%
# Other tools
# -----------
# The same call scores any model once its matrices are in the AnnData:
#
# * scvi-tools ``LinearSCVI``: ``adata.varm["ldvae"] = model.get_loadings().to_numpy()`` (genes x
#   topics, signed) and ``adata.obsm["X_ldvae"] = model.get_latent_representation()``, then
#   ``te.evaluate(adata, topic_gene_key="ldvae", cell_topic_key="X_ldvae", labels=...)``; the latent
#   mean is not a simplex, so IP assigns each cell to its largest coordinate;
# * cNMF: ``spectra.T.reindex(adata.var_names).fillna(0)`` into ``varm`` and
#   ``usage.loc[adata.obs_names]`` into ``obsm``, as above;
# * arrays: ``te.TopicOutputs(topic_gene=beta, gene_names=genes, cell_topic=theta)``.
