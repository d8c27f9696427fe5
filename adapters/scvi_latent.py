"""scVI (Lopez et al. 2018): scvi-tools' ``SCVI``, a cell embedding without topics (clustering only).

The scE2TM paper ranks scVI beside the topic models on clustering (its Fig. 3); scVI has no
topic-gene matrix, so it is scored on ARI / NMI of its latent space alone (embedding-only
scoring) and kept out of every interpretability metric. Install: ``pip install "topiceval[ldvae]"``
(the same scvi-tools as LDVAE).

What this adapter does around the package (as :mod:`topiceval.adapters.ldvae`):

* input: ``layers["counts"]`` (raw counts) as a CSR ``X`` of a fresh AnnData registered with
  ``SCVI.setup_anndata`` (one batch);
* seeding: ``scvi.settings.seed``, the callers' RNG states restored afterwards;
* training on every cell (``train_size=1.0``) on the CPU unless ``accelerator`` says otherwise;
* defaults: ``SCVI``'s own (``n_hidden=128``, ``n_layers=1``, ``dropout_rate=0.1``,
  ``gene_likelihood="zinb"``, gene dispersion) and 400 epochs, ``lr=1e-3``, batch 128: what
  ``SCVI.train()`` does on fewer than 20,000 cells; ``n_topics`` is the latent dimension
  (``n_latent``, default 10);
* outputs: ``cell_embedding`` = the latent mean (``get_latent_representation()``); no
  ``topic_gene`` and no ``cell_topic``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from topiceval.adapters.ldvae import DEFAULTS as LDVAE_DEFAULTS
from topiceval.adapters.ldvae import fit_scvi_model
from topiceval.adapters.registry import TrainParams, TrainResult

from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_LATENT", "fit", "train"]

DEFAULT_LATENT = 10
DEFAULT_EPOCHS = 400
#: Model options and their defaults (``scvi.model.SCVI``'s own: LDVAE's but a ZINB likelihood).
DEFAULTS: dict[str, Any] = {**LDVAE_DEFAULTS, "gene_likelihood": "zinb"}


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: train scVI on ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``layers["counts"]`` unless ``params.layer`` names another.
    params
        ``n_topics`` (latent dimensions, default 10), ``epochs`` (default 400), ``seed`` and the
        options of :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``cell_embedding`` ``(n_cells, n_latent)`` only; ``save`` writes scvi-tools' own model
        folder (``model.pt``, read back with ``scvi.model.SCVI.load``).
    """
    run = fit_scvi_model(adata, params, model="scvi", class_name="SCVI", defaults=DEFAULTS,
                         default_latent=DEFAULT_LATENT, default_epochs=DEFAULT_EPOCHS)
    outputs = TopicOutputs(topic_gene=None, cell_embedding=run.latent, name="scvi",
                           metadata={"model": "scvi", "seed": params.seed, "input": run.data.source})
    return run.result(outputs)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Train scVI and return its embedding-only :class:`~topiceval.protocol.TopicOutputs`."""
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
