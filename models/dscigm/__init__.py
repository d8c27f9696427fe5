"""d-scIGM (deep interpretable generative model for single-cell data), implemented in PyTorch.

Installed as ``topiceval.models.dscigm`` (extra ``dscigm``: ``pip install "topiceval[dscigm]"``).
No installable package of the authors exists; this is topiceval's implementation, written from the
paper and a reading of the authors' research code (nbnbhwyy/d-scIGM), whose defaults it follows and
whose modules ``benchmarks/bench_dscigm.py`` checks it against (same weights and noise in float64:
the same loss terms, gradients and training steps):

* :mod:`.model`: :class:`DSCIGMConfig` and :class:`DeepWeibullTopicModel`: deep Weibull topic
  layers, sawtooth decoder ``Phi = softmax(rho alpha^T)``, Poisson likelihood + Weibull-Gamma KL;
* :mod:`.prior`: :func:`pathway_mask`, the gene -> pathway connections of a flat gene-set prior,
  and :func:`read_hierarchical_prior`, the authors' hierarchical prior (their ``datasets/``
  folder) that masks every encoder layer;
* :mod:`.train`: :class:`DSCIGM` (fit, transform, topic_gene, save, load),
  :class:`TrainingOptions` and :class:`TrainingStep` (the authors' alternating encoder / decoder
  updates by default).

Importing this package imports torch; ``import topiceval`` does not import it.
"""

from .model import DeepWeibullTopicModel, DSCIGMConfig, MaskedLinear, kl_weibull_gamma, poisson_nll
from .prior import HierarchicalPrior, PathwayMask, pathway_mask, read_hierarchical_prior
from .train import DSCIGM, TrainingOptions, TrainingStep

__all__ = [
    "DSCIGM",
    "DSCIGMConfig",
    "DeepWeibullTopicModel",
    "HierarchicalPrior",
    "MaskedLinear",
    "PathwayMask",
    "TrainingOptions",
    "TrainingStep",
    "kl_weibull_gamma",
    "pathway_mask",
    "poisson_nll",
    "read_hierarchical_prior",
]
