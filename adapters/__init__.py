"""Adapters that turn topic models into :class:`topiceval.protocol.TopicOutputs`
(installed as ``topiceval.adapters``).

One module per model, each with a registry trainer ``train(adata, params) -> TrainResult`` and a
convenience ``fit(adata, n_topics, *, epochs, seed, layer, **options) -> TopicOutputs``:

=============  ==============================================  =================================
module         model                                           extra
=============  ==============================================  =================================
``nmf``        NMF, scikit-learn (counts)                      none (core)
``lda``        LatentDirichletAllocation, scikit-learn         none (core)
``scetm``      scETM, PyPI ``scETM==0.5.0``                    ``pip install "topiceval[scetm]"``
``ldvae``      LDVAE, scvi-tools ``LinearSCVI``                ``pip install "topiceval[ldvae]"``
``dscigm``     d-scIGM, :mod:`topiceval.models.dscigm`         ``pip install "topiceval[dscigm]"``
``cnmf``       cNMF, PyPI ``cnmf`` (and finished cNMF runs)    ``pip install "topiceval[cnmf]"``
``spectra``    Spectra, PyPI ``scspectra`` (gene-set prior)    ``pip install "topiceval[spectra]"``
=============  ==============================================  =================================

:class:`PrecomputedAdapter` wraps outputs computed elsewhere (CSV / .npy / .h5ad or an AnnData).
:mod:`.registry` lists the trainable models by name (``topiceval train --list``). Model libraries
are imported only when a model is trained; a missing one raises
:class:`~topiceval.adapters._common.MissingExtraError` naming the extra.
"""

from topiceval.adapters._common import MissingExtraError
from topiceval.adapters.precomputed import PrecomputedAdapter

__all__ = ["MissingExtraError", "PrecomputedAdapter"]
