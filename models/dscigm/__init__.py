"""d-scIGM (deep interpretable generative model for single-cell data), implemented in PyTorch.

Installed as ``topiceval.models.dscigm`` (extra ``dscigm``: ``pip install "topiceval[dscigm]"``).
No installable package of the authors exists; this is an implementation from the paper and the
authors' description of their research script, written for topiceval:

* :mod:`.model`: :class:`DSCIGMConfig` and :class:`DeepWeibullTopicModel`: deep Weibull topic
  layers, sawtooth decoder ``Phi = softmax(rho alpha^T)``, Poisson likelihood + Weibull-Gamma KL;
* :mod:`.prior`: :func:`pathway_mask`, the gene -> pathway connections of the masked encoder;
* :mod:`.train`: :class:`DSCIGM` (fit, transform, topic_gene, save, load) and
  :class:`TrainingOptions`.

Importing this package imports torch; ``import topiceval`` does not import it.
"""

from .model import DeepWeibullTopicModel, DSCIGMConfig, MaskedLinear, kl_weibull_gamma, poisson_nll
from .prior import PathwayMask, pathway_mask
from .train import DSCIGM, TrainingOptions

__all__ = [
    "DSCIGM",
    "DSCIGMConfig",
    "DeepWeibullTopicModel",
    "MaskedLinear",
    "PathwayMask",
    "TrainingOptions",
    "kl_weibull_gamma",
    "pathway_mask",
    "poisson_nll",
]
