"""The public :class:`SCE2TM` model: fit on an AnnData, read outputs, save and load.

Input (what the authors' code expects): a cells x genes matrix of non-negative, log-transformed
expression restricted to highly variable genes. The paper runs ``scanpy.pp.log1p`` on the counts and
keeps the top 5000 highly variable genes; the reference reads that matrix from ``*_HIGHPRE.csv``.
The reconstruction term treats each row as gene weights (``-sum_m x_m log p_m``), so raw counts
also train, but give a different model; a warning says so when the input looks like counts.

The external view is a per-cell embedding in ``adata.obsm`` (the paper: scGPT, 512-d, e.g.
``obsm["X_scGPT"]``). Without one, a PCA of the model input (50 components) stands in, with a
warning: the two views are then two views of the same data, which is not the paper's setting.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch

from topiceval.errors import InputError
from topiceval.io import atomic_path, write_json
from topiceval.protocol import TopicOutputs, check_finite, check_gene_names

from .distill import mutual_knn_neighbours
from .model import SCE2TMConfig, SCE2TMNet
from .train import ExpressionSource, TrainingState, resolve_device, torch_threads, train_net

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData

__all__ = ["SCE2TM", "ExternalEmbeddingWarning", "DEFAULT_EMBEDDING_KEY", "WEIGHTS_FILE", "CONFIG_FILE", "registry_trainer"]

#: obsm key looked up when ``fit`` is given no ``embedding_key`` (then ``"X_scgpt"``, the key
#: :func:`topiceval.datasets.load_dataset` uses).
DEFAULT_EMBEDDING_KEY = "X_scGPT"
_DEFAULT_KEYS = (DEFAULT_EMBEDDING_KEY, "X_scgpt")
#: Files written by :meth:`SCE2TM.save` inside its folder.
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "model.json"
_FORMAT = 1
_PCA_COMPONENTS = 50


class ExternalEmbeddingWarning(UserWarning):
    """No external cell embedding was found; a PCA of the input stands in for it."""


class SCE2TM:
    """scE2TM (Chen et al.): an embedded topic model with cross-view distillation and ECR.

    Parameters
    ----------
    n_topics
        Number of topics ``K`` (paper: 100).
    epochs
        Training epochs (paper: 500).
    batch_size
        ``None``: 512, or 2048 above 10,000 cells (paper).
    seed
        Seed of every random step; the same seed gives the same model on CPU.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    n_threads
        ``torch.set_num_threads`` during :meth:`fit` and inference, restored to its previous value
        afterwards (global torch state is not left changed). ``None``: 1 on machines with at most
        2 usable CPUs, else ``min(4, cpus // 2)``; see
        :func:`topiceval.models.sce2tm.train.default_threads` for why.
    progress
        Show a progress bar with the loss terms.
    **hyperparameters
        Any other field of :class:`SCE2TMConfig` (``ecr_weight``, ``beta_temperature``, ...).

    Attributes
    ----------
    name
        ``"scE2TM"``.
    gene_names
        The ``V`` genes the model was trained on (after :meth:`fit`).
    history
        Per-epoch loss terms, Sinkhorn iterations, learning rate and seconds (a DataFrame).
    info
        Facts about the run: input layer, external embedding source, timings, threads, device.

    Examples
    --------
    >>> model = SCE2TM(n_topics=100).fit(adata, embedding_key="X_scGPT")   # doctest: +SKIP
    >>> beta = model.topic_gene()            # (K, V), each gene's column sums to 1
    >>> theta = model.cell_topic(adata)      # (n, K) topic proportions
    >>> mu = model.cell_embedding(adata)     # (n, K) raw encoder mean, for clustering
    """

    name = "scE2TM"

    def __init__(self, n_topics: int = 100, *, epochs: int = 500, batch_size: int | None = None,
                 seed: int = 0, device: str = "auto", n_threads: int | None = None,
                 progress: bool = True, **hyperparameters: Any) -> None:
        try:
            self.config = SCE2TMConfig.from_dict(
                {"n_topics": n_topics, "epochs": epochs, "batch_size": batch_size, "seed": seed, **hyperparameters}
            )
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None
        self.device = device
        self.n_threads = n_threads
        self.progress = progress
        self.net: SCE2TMNet | None = None
        self.gene_names: np.ndarray | None = None
        self.layer: str | None = None
        self._history: dict[str, list[float]] = {}
        self.info: dict[str, Any] = {}

    # ------------------------------------------------------------------ training
    def fit(self, adata: AnnData, *, embedding_key: str | None = None, layer: str | None = None,
            key_added: str | None = "sce2tm") -> SCE2TM:
        """Train on ``adata``.

        Parameters
        ----------
        adata
            Cells x genes; ``X`` (or ``layers[layer]``) non-negative log-transformed expression of
            highly variable genes, dense or sparse (sparse is never densified whole).
        embedding_key
            ``obsm`` key of the external cell embedding ``(n, d)``. ``None``: ``"X_scGPT"`` when
            (or ``"X_scgpt"``) when present, else a PCA fallback with an
            :class:`ExternalEmbeddingWarning`.
        layer
            Layer holding the input; ``None`` uses ``X``.
        key_added
            Write the outputs into ``adata`` under this key (see :meth:`write_to_adata`);
            ``None`` leaves ``adata`` untouched.

        Returns
        -------
        SCE2TM
            ``self``, trained.
        """
        started = time.perf_counter()
        matrix = _input_matrix(adata, layer)
        genes = check_gene_names(list(map(str, adata.var_names)), matrix.shape[1])
        n_cells = matrix.shape[0]
        if n_cells < 3:
            raise InputError(f"scE2TM needs at least 3 cells, got {n_cells}")
        external, external_info = _external_embedding(adata, embedding_key, matrix, self.config.seed)
        device = resolve_device(self.device)
        cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        with torch_threads(self.n_threads) as n_threads, torch.random.fork_rng(devices=cuda):
            neighbours_x = mutual_knn_neighbours(matrix, self.config.n_neighbors, seed=self.config.seed)
            neighbours_v = mutual_knn_neighbours(external, self.config.n_neighbors, seed=self.config.seed)
            setup_seconds = time.perf_counter() - started
            torch.manual_seed(self.config.seed)
            net = SCE2TMNet(matrix.shape[1], external.shape[1], self.config).to(device)
            source = ExpressionSource(matrix, device)
            external_t = torch.as_tensor(external, dtype=torch.float32, device=device)
            state = TrainingState(n_threads=n_threads, device=str(device))
            train_start = time.perf_counter()
            train_net(net, source, external_t, neighbours_x, neighbours_v, self.config,
                      np.random.default_rng(self.config.seed), state, progress=self.progress)
            train_seconds = time.perf_counter() - train_start
        net.eval()
        self.net = net
        self.gene_names = genes
        self.layer = layer
        self._history = state.history
        epochs = np.asarray(state.history["seconds"])
        self.info = {
            "n_cells": int(n_cells),
            "n_genes": int(matrix.shape[1]),
            "layer": layer if layer is not None else "X",
            "input_sparse": bool(sp.issparse(matrix)),
            "external_embedding": external_info,
            "batch_size": self.config.resolved_batch_size(n_cells),
            "neighbour_set_size_mean": {"expression": float(neighbours_x.sizes.mean()),
                                        "external": float(neighbours_v.sizes.mean())},
            "device": str(device),
            "n_threads": int(n_threads),
            "setup_seconds": float(setup_seconds),
            "train_seconds": float(train_seconds),
            "seconds_per_epoch": float(epochs.mean()) if epochs.size else 0.0,
            "torch_version": str(torch.__version__),
        }
        if key_added is not None:
            self.write_to_adata(adata, key=key_added)
        return self

    # ------------------------------------------------------------------ outputs
    def _require_fit(self) -> SCE2TMNet:
        if self.net is None:
            raise InputError("the scE2TM model is not trained: call fit(adata) or SCE2TM.load(path) first")
        return self.net

    def topic_gene(self) -> np.ndarray:
        """Topic-gene matrix ``beta``, ``(K, V)`` float64; each gene's column sums to 1."""
        net = self._require_fit()
        with torch_threads(self.n_threads):
            return net.topic_gene().double().cpu().numpy()

    def cell_embedding(self, adata: AnnData, layer: str | None | EllipsisType = ...) -> np.ndarray:
        """Raw encoder mean ``mu`` ``(n, K)`` (evaluation mode), the reference's cell output.

        Parameters
        ----------
        adata
            Cells to encode; its genes must include the model's (matched by name).
        layer
            Layer holding the input; ``...`` (default): the one the model was trained on,
            ``None``: ``X``.
        """
        net = self._require_fit()
        matrix = _input_matrix(_align_genes(adata, self.gene_names), self.layer if layer is ... else layer, warn_counts=False)
        device = next(net.parameters()).device
        source = ExpressionSource(matrix, device)
        out = []
        net.eval()
        with torch_threads(self.n_threads):
            step = 4096
            for start in range(0, matrix.shape[0], step):
                out.append(net.encode_mean(source.rows(np.arange(start, min(start + step, matrix.shape[0])))).cpu())
        return torch.cat(out).double().numpy()

    def cell_topic(self, adata: AnnData, layer: str | None | EllipsisType = ...) -> np.ndarray:
        """Topic proportions ``softmax(mu)`` ``(n, K)``; rows sum to 1 (argmax equals that of ``mu``).

        ``layer`` as in :meth:`cell_embedding`.
        """
        return _softmax_rows(self.cell_embedding(adata, layer))

    @property
    def gene_embeddings(self) -> np.ndarray:
        """Gene embeddings ``(V, E)``."""
        return self._require_fit().decoder.gene_embeddings.detach().double().cpu().numpy()

    @property
    def topic_embeddings(self) -> np.ndarray:
        """Topic embeddings ``(K, E)``."""
        return self._require_fit().decoder.topic_embeddings.detach().double().cpu().numpy()

    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch loss terms (``loss recon kl ecr contrast consistency entropy``), ``sinkhorn_iter``, ``lr``, ``seconds``."""
        import pandas as pd

        frame = pd.DataFrame(self._history)
        if "epoch" in frame:
            frame["epoch"] = frame["epoch"].astype(int)
            frame = frame.set_index("epoch")
        return frame

    def to_outputs(self, adata: AnnData | None = None) -> TopicOutputs:
        """:class:`~topiceval.protocol.TopicOutputs`; cell matrices (``softmax(mu)``, ``mu``) when ``adata`` is given."""
        cell_topic = cell_embedding = None
        if adata is not None:
            cell_embedding = self.cell_embedding(adata)
            cell_topic = _softmax_rows(cell_embedding)
        return TopicOutputs(
            topic_gene=self.topic_gene(), gene_names=self.gene_names, cell_topic=cell_topic,
            cell_embedding=cell_embedding, name=self.name,
            metadata={"model": "scE2TM", "config": self.config.to_dict(), "cell_embedding": "encoder mean mu"},
        )

    def write_to_adata(self, adata: AnnData, key: str = "sce2tm") -> None:
        """Store the outputs in ``adata`` (in place).

        * ``obsm[f"X_{key}"]``: raw encoder mean ``mu`` ``(n, K)`` (use it for neighbours/clustering);
        * ``obsm[f"X_{key}_topic"]``: topic proportions ``softmax(mu)``;
        * ``varm[f"{key}_topic_gene"]``: ``beta`` transposed, genes x topics;
        * ``varm[f"{key}_gene_embedding"]``: gene embeddings ``(V, E)``;
        * ``uns[key]``: ``params`` (hyperparameters), ``topic_embedding`` ``(K, E)``, ``history``,
          ``info``.

        ``adata`` must have the model's genes as its ``var_names`` in the same order.
        """
        self._require_fit()
        if list(map(str, adata.var_names)) != list(self.gene_names):
            raise InputError("write_to_adata needs an AnnData whose var_names are the model's genes in order")
        mu = self.cell_embedding(adata)
        adata.obsm[f"X_{key}"] = mu.astype(np.float32)
        adata.obsm[f"X_{key}_topic"] = _softmax_rows(mu).astype(np.float32)
        adata.varm[f"{key}_topic_gene"] = self.topic_gene().T.astype(np.float32)
        adata.varm[f"{key}_gene_embedding"] = self.gene_embeddings.astype(np.float32)
        adata.uns[key] = _uns_safe({
            "params": self.config.to_dict(),
            "topic_embedding": self.topic_embeddings.astype(np.float32),
            "history": {k: np.asarray(v) for k, v in self._history.items()},
            "info": self.info,
        })

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``weights.pt`` (a ``state_dict``) and ``model.json`` into the folder ``path``.

        Each file is written atomically. Returns the folder.
        """
        net = self._require_fit()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        with atomic_path(folder / WEIGHTS_FILE, suffix=".pt") as tmp:
            torch.save(state, tmp)
        write_json({
            "format": _FORMAT,
            "model": "scE2TM",
            "config": self.config.to_dict(),
            "n_genes": int(len(self.gene_names)),
            "external_dim": int(net.cluster_head.fc1.in_features),
            "gene_names": list(self.gene_names),
            "layer": self.layer,
            "history": self._history,
            "info": self.info,
        }, folder / CONFIG_FILE)
        return folder

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", n_threads: int | None = None) -> SCE2TM:
        """Load a model written by :meth:`save` (weights read with ``weights_only=True``)."""
        folder = Path(path)
        config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        for p in (config_path, weights_path):
            if not p.is_file():
                raise InputError(f"not a saved scE2TM model: {p} is missing")
        try:
            meta = json.loads(config_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{config_path} is not valid JSON: {exc}") from None
        if meta.get("model") != "scE2TM" or meta.get("format") != _FORMAT:
            raise InputError(f"{config_path} is not a scE2TM model file of format {_FORMAT}")
        values = dict(meta["config"])
        model = cls(progress=False, device=device, n_threads=n_threads, **values)
        net = SCE2TMNet(int(meta["n_genes"]), int(meta["external_dim"]), model.config)
        target = resolve_device(device)
        state = torch.load(weights_path, map_location=target, weights_only=True)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise InputError(f"{weights_path} does not match {config_path}: {str(exc).splitlines()[0]}") from None
        model.net = net.to(target).eval()
        model.gene_names = check_gene_names(meta["gene_names"], int(meta["n_genes"]))
        model.layer = meta.get("layer")
        model._history = {k: list(v) for k, v in meta.get("history", {}).items()}
        model.info = dict(meta.get("info", {}))
        return model

    def __repr__(self) -> str:
        state = f"trained on {len(self.gene_names)} genes" if self.net is not None else "not trained"
        return f"SCE2TM(n_topics={self.config.n_topics}, epochs={self.config.epochs}, seed={self.config.seed}; {state})"


# ---------------------------------------------------------------------- helpers
def _softmax_rows(mu: np.ndarray) -> np.ndarray:
    shifted = np.exp(mu - mu.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _input_matrix(adata: AnnData, layer: str | None, warn_counts: bool = True) -> np.ndarray | sp.csr_matrix:
    """The model input as float32 (CSR when sparse), validated: finite and non-negative."""
    if layer is None:
        matrix = adata.X
        where = "X"
    else:
        if layer not in adata.layers:
            raise InputError(f"layer {layer!r} is not in the AnnData; its layers are: {', '.join(adata.layers) or '(none)'}")
        matrix = adata.layers[layer]
        where = f"layers[{layer!r}]"
    if matrix is None:
        raise InputError(f"the AnnData has no expression matrix in {where}")
    if _is_backed_sparse(matrix):
        matrix = matrix.to_memory()  # a backed h5ad's sparse X: read as CSR, never densified
    if sp.issparse(matrix):
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        values = matrix.data
    else:
        matrix = np.asarray(matrix, dtype=np.float32)
        values = matrix
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] < 2:
        raise InputError(f"{where} must be a cells x genes matrix with cells and at least 2 genes, got shape {matrix.shape}")
    check_finite(values, f"expression {where}")
    if values.size and values.min() < 0:
        raise InputError(
            f"expression {where} has negative values (min {values.min():.3g}); scE2TM needs non-negative "
            "log-transformed expression (log1p), not scaled or centred data"
        )
    if warn_counts and values.size and np.all(values == np.round(values)) and values.max() > 1:
        warnings.warn(
            f"expression {where} holds integers only: it looks like raw counts. The paper trains on "
            "log1p-transformed expression of the top 5000 highly variable genes", UserWarning, stacklevel=3)
    return matrix


def _is_backed_sparse(matrix: Any) -> bool:
    try:
        from anndata.abc import CSCDataset, CSRDataset
    except ImportError:  # anndata < 0.11
        return hasattr(matrix, "to_memory") and hasattr(matrix, "format")
    return isinstance(matrix, CSRDataset | CSCDataset)


def _align_genes(adata: AnnData, genes: np.ndarray) -> AnnData:
    names = np.asarray(list(map(str, adata.var_names)))
    if names.size == genes.size and np.array_equal(names, genes):
        return adata
    missing = np.setdiff1d(genes, names)
    if missing.size:
        raise InputError(f"{missing.size} of the model's {genes.size} genes are not in the AnnData, e.g. {', '.join(missing[:5])}")
    return adata[:, list(genes)]


def _external_embedding(adata: AnnData, key: str | None, matrix: np.ndarray | sp.csr_matrix,
                        seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The external view ``(n, d)`` float32 and a description of where it came from."""
    if key is None:
        key = next((k for k in _DEFAULT_KEYS if k in adata.obsm), None)
    if key is not None:
        if key not in adata.obsm:
            raise InputError(f"obsm[{key!r}] not found; obsm has: {', '.join(adata.obsm) or '(nothing)'}")
        emb = adata.obsm[key]
        emb = emb.toarray() if sp.issparse(emb) else np.asarray(emb)
        if emb.ndim != 2 or emb.shape[0] != adata.n_obs or emb.shape[1] < 1:
            raise InputError(f"obsm[{key!r}] must be (n_cells, d) = ({adata.n_obs}, d), got {emb.shape}")
        emb = emb.astype(np.float32)
        check_finite(emb, f"obsm[{key!r}]")
        return emb, {"source": f"obsm:{key}", "dim": int(emb.shape[1])}
    from sklearn.decomposition import PCA

    n_comp = int(min(_PCA_COMPONENTS, min(matrix.shape) - 1))
    if n_comp < 1:
        raise InputError(f"too few cells or genes ({matrix.shape}) for a PCA fallback embedding")
    warnings.warn(
        f"no external cell embedding (obsm[{DEFAULT_EMBEDDING_KEY!r}], or embedding_key= / --embedding-key): using a "
        f"{n_comp}-component PCA of the model input as the external view. This is not the paper's "
        "setting (scGPT cell embeddings): name one with embedding_key= (--embedding-key KEY on the command line)",
        ExternalEmbeddingWarning, stacklevel=3)
    pca = PCA(n_components=n_comp, svd_solver="arpack", random_state=seed)
    emb = pca.fit_transform(matrix).astype(np.float32)
    return emb, {"source": "pca", "dim": n_comp}


def _uns_safe(value: Any) -> Any:
    """Drop ``None`` (h5ad cannot store it) and turn tuples into lists, recursively."""
    if isinstance(value, dict):
        return {str(k): _uns_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_uns_safe(v) for v in value]
    return value


def registry_trainer(adata: AnnData, params: Any) -> Any:
    """Trainer of ``topiceval train sce2tm`` (see :mod:`topiceval.adapters.registry`).

    ``params.options`` may hold any :class:`SCE2TMConfig` field and ``device``, ``n_threads``,
    ``progress``.
    """
    from topiceval.adapters.registry import TrainResult

    options = dict(params.options)
    runtime = {k: options.pop(k) for k in ("device", "n_threads", "progress") if k in options}
    if "progress" not in runtime and getattr(params, "progress", None) is not None:
        runtime["progress"] = bool(params.progress)
    model = SCE2TM(
        n_topics=params.n_topics if params.n_topics is not None else SCE2TMConfig.n_topics,
        epochs=params.epochs if params.epochs is not None else SCE2TMConfig.epochs,
        seed=params.seed, **runtime, **options,
    )
    model.fit(adata, embedding_key=params.embedding_key, layer=params.layer, key_added=None)
    history = model.history
    last = {k: float(history[k].iloc[-1]) for k in history.columns if k not in ("lr",)} if len(history) else {}
    return TrainResult(
        outputs=model.to_outputs(adata),
        hyperparameters={**model.config.to_dict(), "batch_size": model.info["batch_size"]},
        save=model.save,
        info={**model.info, "final_epoch": last, "cell_topic": "softmax of the encoder mean",
              "cell_embedding": "encoder mean mu (the reference's output; clustering uses it)"},
    )
