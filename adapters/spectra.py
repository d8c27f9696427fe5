"""Spectra (Kunes, Walle et al., Nat Biotechnol 2024): gene programs guided by a gene-set prior,
through the PyPI package ``scspectra`` (import name ``Spectra``).

:func:`train` calls ``Spectra.est_spectra`` without cell types (``use_cell_types=False``: every
factor is global, training is label-free like every model here) on a gene-set dictionary, the
**prior**: by default Spectra's own dictionary (``gene_sets="spectra_default"``: the 150 ``global``
sets of ``Spectra/data/default_gene_sets.json``, cell-type-independent processes from its
Cytopus knowledge base), or any collection :func:`topiceval.gene_sets.load` reads (``"hallmark"``,
``"reactome"``, ``"msigdb:c2@2024.1.Hs"``, a GMT path). Gene symbols are matched to the data
case-insensitively; Spectra then keeps the sets with at least ``min_gs_num`` genes in the data
and, with ``filter_sets``, the ``n_topics - 1`` most coherent ones (the last factor collects genes
in no set). ``n_topics=None`` is Spectra's recommended default: one factor per usable set plus one.

**The prior makes scores on the same collection circular**: a factor initialised on a gene set
and pulled towards it by the graph loss will be coherent (TC) and enriched (ORA, GSEA) in that
set by construction. The prior's identity (``sha256`` of its source file, ``content_sha256`` of
its content, its source and size) is recorded in the outputs' metadata and in ``config.json``
(``info["prior_gene_sets"]``), and the leaderboard report flags every metric computed against a
collection with the same hash.

Outputs:

* ``topic_gene`` = ``SPECTRA_factors`` (factors x genes): Spectra's gene weights, softmax
  programs scaled by the gene scalings and normalised per gene over factors, non-negative. Its
  ``SPECTRA_markers`` are the genes with the largest weights, so TC / ORA use the same top genes.
  Rows are not scaled (rankings within a factor are what every metric uses).
* ``cell_topic`` = ``SPECTRA_cell_scores`` (cells x factors, non-negative) with rows scaled to sum
  1 (an all-zero row becomes uniform).
* no ``cell_embedding``.

Input: ``X`` unless ``layer`` is given. Spectra models log-normalised expression; with
``normalize="auto"`` (default) whole-number input (raw counts) is first normalised to the median
library size and log1p-transformed, as Spectra's README recommends, and anything else (the
log-normalised ``X`` that :func:`topiceval.datasets.preprocess` writes) is used as it is
(``"log1p"`` / ``"none"`` force either). All genes of the input are used
(``use_highly_variable=False``; run on HVGs by selecting them first, e.g. ``n_top_genes``).

Defaults are those of Spectra's README quick start (also what the scE2TM authors' baseline
notebook passes): ``lam=0.1``, ``delta=0.001``, ``kappa=None`` (estimated), ``rho=0.001``,
``use_weights=True``, ``min_gs_num=3``, ``overlap_threshold=0.2``, 10,000 epochs (``epochs``; its
learning-rate schedule usually stops it earlier), Adam with Spectra's schedule.

Determinism: Spectra initialises its parameters from torch's global generator; training runs
under :func:`~topiceval.adapters._common.global_seed` (the caller's RNG state is restored) with
``threads`` torch threads (default 1).

Resumable fits: with ``checkpoint=FILE`` the training loop is topiceval's copy of
``SPECTRA_Model.train`` (full-batch Adam, the learning rate lowered after every third epoch whose
loss did not fall, stopped when the schedule runs out), which saves the whole training state
(parameters, Adam's moments, the schedule's counters, torch's generator) to ``FILE`` atomically
every ``checkpoint_every`` epochs and resumes from it. Its numbers are Spectra's own loop's, bit
for bit, and a resumed fit's are an unbroken one's (both tested). The file is keyed by the data,
the prior, the options, the seed and the initial parameters (a stale one is ignored) and removed
when the fit ends. Without ``checkpoint`` (and with ``loss="spectra"``) Spectra's own loop runs.

The loss: ``loss="spectra"`` (default) is Spectra's own ``SPECTRA.loss_no_cell_types``;
``loss="blocked"`` computes the same loss with its genes x genes graph terms one cache-sized block
of rows at a time (:mod:`topiceval.adapters._spectra_graph`), through topiceval's copy of the
training loop: the same loss and gradients to float32 rounding (tested against Spectra's and
autograd's), not bit for bit. A Spectra fit amplifies rounding (full-batch Adam from a learning
rate of 1): on pollen, after 60 epochs the blocked fit's topic-gene matrix is 2e-3 from Spectra's
own and Spectra's own on two threads 3e-2 from itself on one; after 100 epochs 0.35 and 0.36 (the
largest entry is 0.5). A long fit with either loss is as reproducible as its rounding: the same
numbers for the same loss, threads and library versions. On 5,000 genes an epoch is about 3x
faster (2.8-4x, ``benchmarks/bench_spectra_loss.py``) and holds no genes x genes array but the
model's own.

Compatibility: ``scspectra`` 0.2.1 imports ``pkg_resources``, which setuptools 81 and later no
longer ship, only to locate its data files; when it is missing, a stand-in offering
``resource_filename`` (through :mod:`importlib.resources`) is provided for the import only.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import importlib.util
import io
import json
import math
import sys
import time
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from topiceval._checkpoint import hash_array, hash_tensors, load_state, save_state
from topiceval.adapters._common import (
    check_positive_int,
    gene_names,
    global_seed,
    import_extra,
    model_input,
    normalize_rows,
    parse_options,
    resolve_progress,
    torch_threads,
)
from topiceval.adapters.registry import TrainParams, TrainResult
from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from topiceval.gene_sets import GeneSets

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_PRIOR", "PRIOR_KEYS", "fit", "load_prior", "train"]

#: Spectra's recommended training length.
DEFAULT_EPOCHS = 10_000
#: The name of Spectra's own gene-set dictionary (its ``global`` sets).
DEFAULT_PRIOR = "spectra_default"
#: What is recorded about the prior (``GeneSets.config()`` keys).
PRIOR_KEYS = ("source", "sha256", "content_sha256", "n_sets", "n_genes", "collection", "release", "species")
#: Model options (``TrainParams.options`` / ``--set KEY=VALUE``) and their defaults.
DEFAULTS: dict[str, Any] = {
    "gene_sets": DEFAULT_PRIOR,  # the prior: "spectra_default" or a topiceval.gene_sets.load spec
    "lam": 0.1,
    "delta": 0.001,
    "kappa": None,  # None: estimated
    "rho": 0.001,  # None: estimated
    "use_weights": True,
    "filter_sets": True,
    "min_gs_num": 3,
    "overlap_threshold": 0.2,
    "normalize": "auto",  # "auto", "log1p" or "none"
    "threads": 1,
    "progress": True,  # Spectra's bar over the epochs (stderr); changes no number
    "checkpoint": None,  # a file: the training state is saved there every checkpoint_every epochs, and resumed
    "checkpoint_every": 200,
    "loss": "spectra",  # "spectra": SPECTRA.loss_no_cell_types; "blocked": its graph terms in row blocks
}
#: Options that change no number (not recorded as hyperparameters).
_RUN_OPTIONS = ("threads", "progress", "checkpoint", "checkpoint_every")
#: ``SPECTRA_Model.train``'s learning-rate schedule (its default; ``est_spectra`` passes none).
LR_SCHEDULE = (1.0, 0.5, 0.1, 0.01, 0.001, 0.0001)
_NORMALIZE = ("auto", "log1p", "none")
_LOSSES = ("spectra", "blocked")


def _import_spectra() -> Any:
    """``import Spectra``, with a ``pkg_resources`` stand-in when setuptools no longer ships one."""
    if importlib.util.find_spec("pkg_resources") is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pkg_resources' own deprecation warning
            return import_extra("Spectra", "spectra", "spectra")
    shim = types.ModuleType("pkg_resources")

    def resource_filename(package: str, resource: str) -> str:
        return str(importlib.resources.files(package).joinpath(resource))

    shim.resource_filename = resource_filename  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim
    try:
        return import_extra("Spectra", "spectra", "spectra")
    finally:
        if sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]


def load_prior(spec: str) -> GeneSets:
    """The prior collection: Spectra's default dictionary or a :func:`topiceval.gene_sets.load` spec.

    Parameters
    ----------
    spec
        ``"spectra_default"`` (the ``global`` sets of Spectra's ``default_gene_sets.json``, which
        needs the ``spectra`` extra) or anything :func:`topiceval.gene_sets.load` accepts.

    Returns
    -------
    GeneSets
        Symbols upper-cased (topiceval's case rule); ``config()`` identifies it.
    """
    from topiceval.gene_sets import GeneSets, load

    if spec == DEFAULT_PRIOR:
        found = importlib.util.find_spec("Spectra")
        if found is None or not found.submodule_search_locations:
            raise InputError('the prior "spectra_default" is Spectra\'s dictionary: pip install "topiceval[spectra]"')
        # read from the package folder without importing it (its import needs torch and pkg_resources)
        path = Path(list(found.submodule_search_locations)[0]) / "data" / "default_gene_sets.json"
        sets = json.loads(path.read_text(encoding="utf-8"))["global"]
        return GeneSets.from_dict(sets, source="Spectra default_gene_sets.json (global)")
    return load(spec, progress=False)


@contextlib.contextmanager
def _epoch_bar(show: bool) -> Iterator[None]:
    """Spectra's training loop always draws a tqdm bar; with ``show=False`` it is disabled.

    Spectra exposes no switch for it, so the ``tqdm`` its training module imported is replaced
    by one that draws nothing, for the duration of the fit only.
    """
    module = sys.modules.get("Spectra.Spectra")
    if show or module is None or not hasattr(module, "tqdm"):
        yield
        return
    original = module.tqdm
    module.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        module.tqdm = original


class _Checkpoint:
    """The state of one Spectra training loop in one file (``torch.save`` of tensors, numbers and
    text only, read back with ``weights_only=True``)."""

    def __init__(self, path: str | Path, context: dict[str, Any]) -> None:
        self.path = Path(path)
        self.context = json.dumps(context, sort_keys=True, default=str)
        self.key = ""

    def bind(self, internal: Any, x: np.ndarray, lr_schedule: tuple[float, ...], num_epochs: int) -> None:
        """Key the file by the fit: the context, the data, the schedule and the initial parameters."""
        digest = hashlib.sha256(self.context.encode())
        digest.update(json.dumps({"shape": list(np.shape(x)), "lr_schedule": list(lr_schedule),
                                  "num_epochs": int(num_epochs)}).encode())
        hash_array(digest, x)
        hash_tensors(digest, internal.state_dict())
        self.key = digest.hexdigest()

    def load(self) -> dict[str, Any] | None:
        """The state saved for this fit, or ``None`` (none, unreadable, or another fit's)."""
        return load_state(self.path, self.key)

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (never half a file)."""
        save_state(self.path, self.key, state)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _resumable_train(model: Any, X: np.ndarray, labels: Any = None, lr_schedule: Any = LR_SCHEDULE,
                     num_epochs: int = 10_000, verbose: bool = False, *, checkpoint: _Checkpoint | None, every: int,
                     progress: bool, record: dict[str, Any], blocked: bool = False) -> None:
    """``SPECTRA_Model.train`` (scspectra 0.2), step for step, saving its state every ``every`` epochs.

    The same operations in the same order: ``zero_grad``, the loss, ``backward``, Adam's step; after
    an epoch whose loss is not below the previous one a counter rises, every third time Adam is
    made anew at the next learning rate, and the fit stops when the schedule is used up. Fills
    ``record`` with the epochs run, the last learning rate, whether the schedule stopped the fit,
    where it resumed and the training seconds spent before (``resumed_fit_s``).

    ``checkpoint=None`` saves nothing. ``blocked=True`` computes Spectra's loss through
    :func:`topiceval.adapters._spectra_graph.loss_no_cell_types` (the gene-graph terms in row
    blocks: the same loss and gradients to float32 rounding, not bit for bit).
    """
    import torch
    from tqdm.auto import tqdm

    internal = model.internal_model
    schedule = tuple(float(rate) for rate in lr_schedule)
    objective = internal.loss_no_cell_types
    if blocked and not internal.use_cell_types:
        from topiceval.adapters import _spectra_graph

        graph = _spectra_graph.GeneGraph.from_model(internal)
        objective = functools.partial(_spectra_graph.loss_no_cell_types, internal, graph=graph)
        record.update(graph_edges=0 if graph is None else graph.n_edges)
    state = None
    if checkpoint is not None:
        checkpoint.bind(internal, X, schedule, num_epochs)
        state = checkpoint.load()
    epoch, counter, last = 0, 0, math.inf
    if state is not None:
        internal.load_state_dict(state["model"])
        epoch, counter, last = int(state["epoch"]), int(state["counter"]), float(state["last"])
        torch.set_rng_state(state["rng"])
    opt = torch.optim.Adam(internal.parameters(), lr=schedule[counter // 3])
    earlier = 0.0  # training seconds of earlier processes, up to the checkpoint
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        earlier = float(state["seconds"])
    record.update(resumed_at_epoch=epoch, resumed_fit_s=earlier, stopped_by_schedule=False)
    started = time.perf_counter()
    with tqdm(total=num_epochs, initial=epoch, desc="Spectra", unit="epoch", disable=not progress) as bar:
        while epoch < num_epochs:
            opt.zero_grad()
            if internal.use_cell_types:
                loss = internal.loss(X, labels)
            else:
                loss = objective(X)
            loss.backward()
            opt.step()
            epoch += 1
            bar.update(1)
            value = loss.item()
            if value >= last:
                counter += 1
                if counter // 3 >= len(schedule):
                    record["stopped_by_schedule"] = True
                    break
                if counter % 3 == 0:
                    opt = torch.optim.Adam(internal.parameters(), lr=schedule[counter // 3])
                    if verbose:
                        print(f"UPDATING LR TO {schedule[counter // 3]}")
            last = value
            if checkpoint is not None and epoch % every == 0 and epoch < num_epochs:
                checkpoint.save({"epoch": epoch, "counter": counter, "last": last, "model": internal.state_dict(),
                                 "optimizer": opt.state_dict(), "rng": torch.get_rng_state(),
                                 "seconds": earlier + time.perf_counter() - started})
    record.update(epochs_run=epoch, final_lr=schedule[min(counter // 3, len(schedule) - 1)])
    if internal.use_cell_types:
        model._SPECTRA_Model__store_parameters(labels)
    else:
        model._SPECTRA_Model__store_parameters_no_celltypes()


@contextlib.contextmanager
def _training_loop(spectra: Any, checkpoint: _Checkpoint | None, every: int, progress: bool,
                   record: dict[str, Any], blocked: bool = False) -> Iterator[None]:
    """Run ``SPECTRA_Model.train`` as :func:`_resumable_train` for the fit only (``checkpoint`` given,
    or ``blocked``); otherwise Spectra's own loop runs."""
    cls = spectra.Spectra.SPECTRA_Model
    if checkpoint is None and not blocked:
        yield
        return
    original = cls.train

    def train(self: Any, X: np.ndarray, labels: Any = None, lr_schedule: Any = LR_SCHEDULE,
              num_epochs: int = 10_000, verbose: bool = False) -> None:
        _resumable_train(self, X, labels, lr_schedule, num_epochs, verbose, checkpoint=checkpoint, every=every,
                         progress=progress, record=record, blocked=blocked)

    cls.train = train
    try:
        yield
    finally:
        cls.train = original


def _log_normalise(matrix: Any) -> np.ndarray:
    """log1p of counts scaled to the median library size (Spectra's README recommendation)."""
    dense = np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)
    sizes = dense.sum(axis=1, keepdims=True)
    return np.log1p(dense / sizes * np.median(sizes))


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: fit Spectra on ``adata`` with a gene-set prior (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``X`` unless ``params.layer`` names a layer.
    params
        ``n_topics`` (factors L; ``None``: usable gene sets + 1), ``epochs`` (default 10,000),
        ``seed``, and the options of :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``topic_gene`` ``(L, n_genes)``, ``cell_topic`` ``(n_cells, L)`` rows on the simplex;
        ``info["prior_gene_sets"]`` identifies the prior; ``info["factor_labels"]`` are Spectra's
        labels (``index-X-global-X-gene set``, the set when its overlap passes
        ``overlap_threshold``).
    """
    import anndata
    import pandas as pd

    options = parse_options(params.options, DEFAULTS, "spectra")
    epochs = check_positive_int(params.epochs or DEFAULT_EPOCHS, "epochs")
    threads = check_positive_int(options["threads"], "threads")
    progress = bool(resolve_progress(options, params.options, params.progress))
    min_gs = check_positive_int(options["min_gs_num"], "min_gs_num", 2)
    every = check_positive_int(options["checkpoint_every"], "checkpoint_every")
    if options["loss"] not in _LOSSES:
        raise InputError(f"spectra: loss must be one of {', '.join(_LOSSES)}, got {options['loss']!r}")
    blocked = options["loss"] == "blocked"
    if options["normalize"] not in _NORMALIZE:
        raise InputError(f"spectra: normalize must be one of {', '.join(_NORMALIZE)}, got {options['normalize']!r}")
    rates = {}
    for key in ("lam", "delta", "kappa", "rho", "overlap_threshold"):
        value = options[key]
        if isinstance(value, str) and value.strip().lower() in ("none", "null"):
            value = None
        try:
            rates[key] = None if value is None else float(value)
        except (TypeError, ValueError):
            raise InputError(f"spectra: {key} must be a number, got {value!r}") from None
    for key in ("lam", "delta", "overlap_threshold"):
        if rates[key] is None:
            raise InputError(f"spectra: {key} must be a number, got None")
    for key in ("kappa", "rho"):
        if rates[key] is not None and not 0 < rates[key] < 1:
            raise InputError(f"spectra: {key} must be in (0, 1) or None, got {rates[key]}")
    n_topics = None if params.n_topics is None else check_positive_int(params.n_topics, "n_topics", 2)
    data = model_input(adata, params.layer, default=None, model="spectra",
                       needs="non-negative (log-normalised) expression", dtype=np.float64)
    names = gene_names(adata)
    if len(set(names)) != len(names):
        raise InputError("spectra: gene names must be unique; run adata.var_names_make_unique()")
    normalise = options["normalize"] == "log1p" or (options["normalize"] == "auto" and data.integer)
    values = _log_normalise(data.matrix) if normalise else np.asarray(
        data.matrix.toarray() if hasattr(data.matrix, "toarray") else data.matrix, dtype=np.float64)
    spectra = _import_spectra()

    prior = load_prior(str(options["gene_sets"]))
    by_symbol: dict[str, str] = {}
    for name in names:
        by_symbol.setdefault(str(name).upper(), str(name))
    dictionary = {}
    for set_name, genes in prior.to_dict().items():
        present = sorted({by_symbol[g] for g in genes if g in by_symbol})
        if len(present) >= min_gs:
            dictionary[str(set_name)] = present
    if not dictionary:
        raise InputError(f"spectra: no gene set of the prior {options['gene_sets']!r} has {min_gs} or more genes "
                         f"in the data ({prior.n_sets} sets; data genes e.g. {', '.join(map(str, names[:5]))})")
    if n_topics is not None and not options["filter_sets"] and n_topics < len(dictionary) + 1:
        raise InputError(f"spectra: n_topics = {n_topics} is fewer than the {len(dictionary)} usable gene sets + 1; "
                         "pass filter_sets=true (keep the most coherent n_topics - 1) or more topics")
    record = {key: prior.config().get(key) for key in PRIOR_KEYS}
    record.update(spec=str(options["gene_sets"]), n_sets_in_data=len(dictionary))

    frame = anndata.AnnData(X=values.astype(np.float32), obs=pd.DataFrame(index=[f"c{i}" for i in range(adata.n_obs)]),
                            var=pd.DataFrame(index=list(names)))
    checkpoint = None
    if options["checkpoint"] is not None:
        context = {"model": "spectra", "seed": params.seed, "n_topics": n_topics, "dictionary": dictionary,
                   "genes": list(map(str, names)), "rates": rates, "normalised_here": bool(normalise),
                   **{key: value for key, value in options.items() if key not in _RUN_OPTIONS}}
        checkpoint = _Checkpoint(options["checkpoint"], context)
    loop: dict[str, Any] = {}
    started = time.perf_counter()
    log = io.StringIO()  # Spectra prints its gene-set checks
    with global_seed(params.seed), torch_threads(threads), contextlib.redirect_stdout(log), \
            _epoch_bar(progress), _training_loop(spectra, checkpoint, every, progress, loop, blocked), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message="Please import `csr_matrix`", category=DeprecationWarning)
        model = spectra.est_spectra(
            adata=frame, gene_set_dictionary=dictionary, L=n_topics, use_highly_variable=False,
            use_weights=bool(options["use_weights"]), lam=rates["lam"], delta=rates["delta"],
            kappa=rates["kappa"], rho=rates["rho"], use_cell_types=False, n_top_vals=50,
            filter_sets=bool(options["filter_sets"]), label_factors=True, clean_gs=True, min_gs_num=min_gs,
            overlap_threshold=rates["overlap_threshold"], num_epochs=epochs,
        )
    fit_s = time.perf_counter() - started
    if checkpoint is not None:
        checkpoint.remove()
    factors = np.asarray(frame.uns["SPECTRA_factors"], dtype=np.float64)
    scores = np.asarray(frame.obsm["SPECTRA_cell_scores"], dtype=np.float64)
    n_factors = int(frame.uns["SPECTRA_L"])
    labels = [str(label) for label in frame.uns["SPECTRA_overlap"].index] if "SPECTRA_overlap" in frame.uns else []
    record["n_sets_used"] = min(len(dictionary), n_factors - 1) if options["filter_sets"] else len(dictionary)
    outputs = TopicOutputs(
        topic_gene=factors,
        gene_names=names,
        cell_topic=normalize_rows(scores),
        name="spectra",
        metadata={"model": "spectra", "seed": params.seed, "input": data.source, "prior_gene_sets": record},
    )
    hyper = {"n_topics": n_factors, "n_topics_asked": n_topics, "epochs": epochs, "seed": params.seed,
             "input": data.source, "log_normalised_here": bool(normalise),
             **{key: value for key, value in options.items() if key not in _RUN_OPTIONS}, **rates}
    info = {
        "fit_s": fit_s,
        "threads": threads,
        "prior_gene_sets": record,
        "factor_labels": labels,
        "eta_diag": [float(v) for v in np.asarray(model.return_eta_diag()).reshape(-1)],
        **loop,  # with a checkpoint: epochs_run, final_lr, stopped_by_schedule, resumed_at_epoch, resumed_fit_s
    }
    return TrainResult(outputs=outputs, hyperparameters=hyper, save=None, info=info)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Fit Spectra and return its :class:`~topiceval.protocol.TopicOutputs` (see :func:`train`).

    Examples
    --------
    >>> from topiceval import datasets
    >>> from topiceval.adapters import spectra
    >>> adata = datasets.preprocess(datasets.load_default(), n_top_genes=2000)  # doctest: +SKIP
    >>> outputs = spectra.fit(adata, n_topics=20, seed=0, gene_sets="hallmark")  # doctest: +SKIP
    >>> outputs.metadata["prior_gene_sets"]["content_sha256"]  # doctest: +SKIP
    """
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
