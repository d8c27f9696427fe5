"""scE2TM (Chen et al.), a PyTorch implementation (installed as ``topiceval.models.sce2tm``).

Needs torch: ``pip install "topiceval[sce2tm]"``. Modules mirror the method:

* :mod:`.encoder`: the VAE encoder (cell-topic head), the logistic-normal prior, the cluster head;
* :mod:`.distill`: mutual-kNN neighbour sets and the cross-view distillation losses;
* :mod:`.ecr`: Sinkhorn optimal transport and the embedding clustering regularisation;
* :mod:`.decoder`: gene and topic embeddings, the topic-gene matrix, the reconstruction;
* :mod:`.model`: hyperparameters and the loss of one training step;
* :mod:`.train`: the training loop, minibatch streaming, threads and device;
* :mod:`.api`: the public :class:`SCE2TM` (a :class:`topiceval.TopicModel`).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'topiceval.models.sce2tm needs torch: pip install "topiceval[sce2tm]" '
        "(install a CPU build first with pip install torch if you have no GPU)"
    ) from exc

from .api import SCE2TM, ExternalEmbeddingWarning
from .model import SCE2TMConfig

__all__ = ["SCE2TM", "SCE2TMConfig", "ExternalEmbeddingWarning"]
