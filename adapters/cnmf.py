"""Consensus NMF (Kotliar et al., eLife 2019) through the PyPI package ``cnmf``, and finished cNMF runs.

:func:`train` runs the package's own pipeline, the steps of its README, in a temporary working
folder that is always removed: ``prepare`` (TPM normalisation, ``num_highvar_genes``
over-dispersed genes, genes scaled to unit variance), ``factorize`` (``replicates`` NMF runs,
seeds drawn from ``seed``), ``combine``, ``consensus`` (replicate spectra with a mean distance to
their nearest neighbours above ``density_threshold`` dropped, k-means into ``n_topics`` clusters,
median spectra, usages refitted) and ``load_results``.

Outputs:

* ``topic_gene`` = the **gene spectra scores** by default (``topic_gene="score"``): cNMF's
  z-score units, the regression coefficients of each gene's z-scored TPM on the program usages,
  for every gene of the input. They are what cNMF's authors rank marker genes by (``load_results``
  returns its ``top_genes`` from them; the step-by-step guide presents them as the marker
  ranking), and they are signed (a negative value: the program lowers the gene), like LDVAE's
  loadings. ``topic_gene="tpm"``: the **TPM spectra** (each program's expression profile in TPM
  units) with rows scaled to sum 1; their top genes are the most highly expressed genes of each
  program, often the same housekeeping and ribosomal genes in every program (lower TD).
* ``cell_topic`` = the consensus **usages normalised to the simplex** (``load_results(...,
  norm_usage=True)``, what cNMF reports): each cell's share of each program. A cell with zero usage
  everywhere gets uniform shares.
* no ``cell_embedding``.

Input: ``layers["counts"]`` when there is one (what :func:`topiceval.datasets.preprocess` keeps),
else ``X`` (a file of raw counts), unless ``layer`` is given; cNMF factorises counts (it computes
TPM and selects genes itself), so non-integer input draws a warning. Genes with no count are left
out of the run (cNMF requires it) and get 0 in ``topic_gene``. Cells with no count in the
over-dispersed genes make cNMF stop: an :class:`~topiceval.errors.InputError`.

Defaults are those of cNMF's README and command line: ``replicates=100`` (``--n-iter``),
``num_highvar_genes=2000``, ``beta_loss="frobenius"`` (coordinate descent), ``init="random"``,
``max_NMF_iter=1000`` (``epochs``), ``local_neighborhood_size=0.3``, ``density_threshold=0.5``
(the package's default; its README example then re-runs the consensus at 0.01 after looking at
the distance histogram, which is a per-dataset choice). The number of programs has no default
in cNMF (its authors choose K from ``k_selection_plot``); here it is 20, as for the other models.

Determinism: every replicate's seed comes from ``seed`` (cNMF draws them from the global numpy
RNG, whose state is restored afterwards) and the consensus k-means has a fixed seed, so the same
seed gives the same numbers. Replicates run in this process (``workers=1``) with ``threads`` BLAS /
OpenMP threads (default 1); ``workers=N`` runs cNMF's own ``multiprocessing`` pool of N processes.

Resumable fits: with ``checkpoint=PATH`` (and ``workers=1``) the working folder is ``PATH`` (a
folder) instead of a temporary one, and a state file in it records the steps done: ``prepare``,
then each of the 20 chunks of replicates (cNMF's own worker split, run in turn). A fit killed
part-way keeps the replicates of its finished chunks and runs the others; each replicate has its
own seed, so the result is an unbroken fit's (tested). The folder is keyed by the input, the
settings and the seed (a stale one is emptied first) and removed when the fit ends.

:func:`read_run` / :func:`load_run` read a finished run folder (``NAME.gene_spectra_score.k_K.
dt_D.txt``, ``NAME.gene_spectra_tpm.k_K.dt_D.txt``, ``NAME.usages.k_K.dt_D.consensus.txt``), such
as one made by the ``cnmf`` command line or ``DIR/model/`` of ``topiceval train cnmf``, with the
same conventions, so runs made elsewhere are scored like runs made here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from topiceval._checkpoint import hash_array
from topiceval._utils import PathLike, preview
from topiceval.adapters._common import (
    COUNTS_LAYER,
    check_positive_int,
    gene_names,
    global_seed,
    import_extra,
    model_input,
    normalize_rows,
    parse_options,
    resolve_progress,
    warn_if_not_counts,
)
from topiceval.adapters.registry import TrainParams, TrainResult
from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from topiceval.adapters.precomputed import PrecomputedAdapter

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_TOPICS", "RUN_NAME", "fit", "load_run", "read_run", "train"]

DEFAULT_TOPICS = 20
#: Iterations of each NMF replicate (cNMF's ``max_NMF_iter``) unless ``epochs`` is given.
DEFAULT_EPOCHS = 1000
#: The run name inside the working folder (the prefix of every file cNMF writes).
RUN_NAME = "cnmf"
#: Model options (``TrainParams.options`` / ``--set KEY=VALUE``) and their defaults.
DEFAULTS: dict[str, Any] = {
    "replicates": 100,  # cNMF --n-iter: NMF runs combined into the consensus
    "num_highvar_genes": 2000,  # over-dispersed genes factorised (all genes when fewer)
    "beta_loss": "frobenius",  # or "kullback-leibler", "itakura-saito" (solver "mu")
    "init": "random",  # or "nndsvd"
    "alpha_usage": 0.0,
    "alpha_spectra": 0.0,
    "density_threshold": 0.5,  # 2.0 or more: no replicate spectrum filtered out
    "local_neighborhood_size": 0.3,  # neighbours for the density filter, as a share of replicates
    "refit_usage": True,
    "normalize_tpm_spectra": False,
    "topic_gene": "score",  # or "tpm"
    "workers": 1,  # >1: cNMF's multiprocessing pool
    "threads": 1,  # BLAS / OpenMP threads
    "progress": True,  # a bar over the replicates (stderr); changes no number
    "checkpoint": None,  # a folder: the working folder is kept there and a killed fit resumes from it
}
#: Options that change no number (not recorded as hyperparameters).
_RUN_OPTIONS = ("workers", "threads", "progress", "checkpoint")
#: cNMF's split of the replicates into worker jobs, run in turn (a progress step, a resume point).
_CHUNKS = 20
#: The state file of a resumable working folder.
_STATE_FILE = "topiceval-state.json"
_TOPIC_GENE = ("score", "tpm")


def _dt_text(density_threshold: float) -> str:
    """How cNMF writes a density threshold into file names (``0.5`` -> ``0_5``)."""
    return str(density_threshold).replace(".", "_")


class _WorkFolder:
    """A kept cNMF working folder and its state file: the key of the fit, whether ``prepare`` ran,
    the chunks of replicates finished, and the seconds spent on them.

    As a context manager it yields the folder and removes it when the fit ends or fails for good
    (an :class:`~topiceval.errors.InputError`); an interrupted fit leaves it to resume from.
    """

    def __init__(self, path: str | Path, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self.state: dict[str, Any] = {"key": key, "prepared": False, "chunks": [], "seconds": 0.0}
        try:
            found = json.loads((self.path / _STATE_FILE).read_text())
        except (OSError, ValueError):
            found = None
        if isinstance(found, dict) and found.get("key") == key:
            self.state.update(found)
        elif found is not None or (self.path.is_dir() and not any(self.path.iterdir())):
            shutil.rmtree(self.path)  # another fit's folder (or an empty one): start afresh
        elif self.path.exists():
            raise InputError(f"cnmf: checkpoint {self.path} exists and is not a cNMF working folder kept by "
                             "topiceval; give a new path")
        self.path.mkdir(parents=True, exist_ok=True)
        self.done()  # the state file first: the folder is recognisable as ours from now on
        self.resumed_fit_s = float(self.state["seconds"])
        self.resumed_chunks = len(self.state["chunks"])

    def __enter__(self) -> str:
        return str(self.path)

    def __exit__(self, kind: type[BaseException] | None, *exc: Any) -> None:
        if kind is None or issubclass(kind, InputError):  # done, or never to finish: nothing to resume
            self.remove()

    def done(self, **changes: Any) -> None:
        """Record a finished step (atomically)."""
        from topiceval.io import write_json

        self.state.update(changes)
        write_json(self.state, self.path / _STATE_FILE)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _fit_key(matrix: Any, genes: list[str], cells: list[str], settings: dict[str, Any]) -> str:
    """What a kept working folder belongs to: the input counts, its names and the settings."""
    digest = hashlib.sha256(json.dumps({"shape": list(matrix.shape), "genes": genes, "cells": cells, **settings},
                                       sort_keys=True, default=str).encode())
    hash_array(digest, matrix)
    return digest.hexdigest()


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(limits=max(1, int(n))):
        yield


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: run cNMF on ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``layers["counts"]`` if present, else ``X``, unless
        ``params.layer`` names another (``"X"`` for ``adata.X``). Gene names must be unique.
    params
        ``n_topics`` (programs K, default 20), ``epochs`` (iterations per NMF replicate, default
        1000), ``seed``, and the options of :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``topic_gene`` ``(n_topics, n_genes)``, ``cell_topic`` ``(n_cells, n_topics)`` rows on the
        simplex; ``save`` writes cNMF's result files (``*.txt``) into ``DIR/model/``, a run folder
        :func:`read_run` reads.
    """
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    options = parse_options(params.options, DEFAULTS, "cnmf")
    k = check_positive_int(params.n_topics or DEFAULT_TOPICS, "n_topics", 2)
    max_iter = check_positive_int(params.epochs or DEFAULT_EPOCHS, "epochs")
    replicates = check_positive_int(options["replicates"], "replicates")
    workers = check_positive_int(options["workers"], "workers")
    threads = check_positive_int(options["threads"], "threads")
    progress = bool(resolve_progress(options, params.options, params.progress))
    n_hvg = check_positive_int(options["num_highvar_genes"], "num_highvar_genes", 2)
    density = float(options["density_threshold"])
    neighbourhood = float(options["local_neighborhood_size"])
    if options["topic_gene"] not in _TOPIC_GENE:
        raise InputError(f"cnmf: topic_gene must be one of {', '.join(_TOPIC_GENE)}, got {options['topic_gene']!r}")
    if not density > 0:
        raise InputError(f"cnmf: density_threshold must be > 0, got {density}")
    if not 0 < neighbourhood <= 1:
        raise InputError(f"cnmf: local_neighborhood_size must be in (0, 1], got {neighbourhood}")
    if int(neighbourhood * replicates) < 1:
        raise InputError(f"cnmf: local_neighborhood_size x replicates = {neighbourhood * replicates:g} leaves no "
                         f"neighbour for the density filter; use at least {math.ceil(1 / neighbourhood)} replicates")
    if not 0 <= params.seed < 2**32:
        raise InputError(f"cnmf: seed must be in [0, 2**32), got {params.seed}")
    default = COUNTS_LAYER if COUNTS_LAYER in adata.layers else None  # else X: a counts.h5ad
    data = model_input(adata, params.layer, default=default, model="cnmf", needs="non-negative counts",
                       dtype=np.float32)
    warn_if_not_counts(data, "cnmf")
    names = gene_names(adata)
    if len(set(names)) != len(names):
        raise InputError("cnmf: gene names must be unique (cNMF selects genes by name); "
                         "run adata.var_names_make_unique()")
    matrix = sp.csr_matrix(data.matrix)
    expressed = np.flatnonzero(np.asarray(matrix.sum(axis=0)).reshape(-1) > 0)
    if k > min(adata.n_obs, expressed.size):
        raise InputError(f"cnmf: n_topics = {k} exceeds min(n_cells, expressed genes) = "
                         f"{min(adata.n_obs, expressed.size)}")
    cells = [str(c) for c in adata.obs_names]
    if len(set(cells)) != len(cells):
        cells = [f"cell{i}" for i in range(adata.n_obs)]
    cnmf_module = import_extra("cnmf", "cnmf", "cnmf")

    kept = None
    if options["checkpoint"] is not None and workers == 1:
        settings = {"k": k, "max_iter": max_iter, "seed": params.seed, "chunks": _CHUNKS,
                    **{key: value for key, value in options.items() if key not in _RUN_OPTIONS}}
        kept = _WorkFolder(options["checkpoint"], _fit_key(matrix[:, expressed], list(map(str, names[expressed])),
                                                            cells, settings))
    started = time.perf_counter()
    log = io.StringIO()  # cNMF prints a line per replicate and step
    folder_context = kept if kept is not None else tempfile.TemporaryDirectory(prefix="topiceval-cnmf-")
    with folder_context as work, _threads(threads), contextlib.redirect_stdout(log), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message="Received a view of an AnnData")  # scanpy, inside cNMF
        run = cnmf_module.cNMF(output_dir=work, name=RUN_NAME)
        if kept is None or not kept.state["prepared"]:
            counts_path = Path(work) / "counts.h5ad"
            anndata.AnnData(X=matrix[:, expressed], obs=pd.DataFrame(index=cells),
                            var=pd.DataFrame(index=list(names[expressed]))).write_h5ad(counts_path)
            try:
                with global_seed(params.seed, torch=False):  # cNMF seeds numpy's global RNG
                    run.prepare(counts_fn=str(counts_path), components=[k], n_iter=replicates, seed=params.seed,
                                beta_loss=options["beta_loss"], num_highvar_genes=n_hvg, init=options["init"],
                                alpha_usage=float(options["alpha_usage"]),
                                alpha_spectra=float(options["alpha_spectra"]), max_NMF_iter=max_iter)
            except Exception as exc:  # cNMF raises a bare Exception for cells without counts in the HVGs
                if str(exc).startswith("Error:"):
                    raise InputError(f"cnmf: {str(exc).removeprefix('Error: ')}") from None
                raise
            if kept is not None:
                kept.done(prepared=True, seconds=kept.state["seconds"] + time.perf_counter() - started)
        factorize_started = time.perf_counter()
        if workers > 1:
            run.factorize_multi_process(workers)
        else:
            from tqdm.auto import tqdm

            chunks = min(replicates, _CHUNKS)  # cNMF's worker split, run in turn for a progress bar
            finished = set(kept.state["chunks"]) if kept is not None else set()
            for worker in tqdm(range(chunks), desc=f"cnmf: {replicates} NMF replicates", unit="chunk",
                               leave=False, disable=not progress):
                if worker in finished:
                    continue
                chunk_started = time.perf_counter()
                run.factorize(worker_i=worker, total_workers=chunks)
                if kept is not None:
                    kept.done(chunks=sorted(finished | {worker}),
                              seconds=kept.state["seconds"] + time.perf_counter() - chunk_started)
                    finished.add(worker)
        factorize_s = time.perf_counter() - factorize_started
        run.combine(components=[k])
        try:
            run.consensus(k, density_threshold=density, local_neighborhood_size=neighbourhood,
                          show_clustering=False, build_ref=False, close_clustergram_fig=True,
                          refit_usage=bool(options["refit_usage"]),
                          normalize_tpm_spectra=bool(options["normalize_tpm_spectra"]))
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"cnmf consensus: {exc} (density_threshold={density}, {replicates} replicates; "
                             "raise density_threshold or run more replicates)") from None
        folder = Path(work) / RUN_NAME
        files = {path.name: path.read_bytes() for path in sorted(folder.glob("*.txt"))}
        outputs = read_run(folder, k=k, density_threshold=density, topic_gene=options["topic_gene"], name="cnmf")

    topic_gene = np.zeros((k, adata.n_vars))
    topic_gene[:, expressed] = outputs.topic_gene
    outputs = TopicOutputs(
        topic_gene=topic_gene,
        gene_names=names,
        cell_topic=outputs.cell_topic,
        name="cnmf",
        metadata={"model": "cnmf", "seed": params.seed, "input": data.source, "topic_gene": options["topic_gene"]},
    )
    hyper = {"n_topics": k, "epochs": max_iter, "seed": params.seed, "input": data.source,
             **{key: value for key, value in options.items() if key not in _RUN_OPTIONS}}
    info = {
        "fit_s": time.perf_counter() - started,
        "factorize_s": factorize_s,
        "genes_without_counts": int(adata.n_vars - expressed.size),
        "workers": workers,
        "threads": threads,
        "files": sorted(files),
    }
    if kept is not None:  # (its folder is gone: removed on leaving the with block)
        # what earlier processes finished (prepare, chunks of replicates) and their seconds
        info.update(resumed_chunks=kept.resumed_chunks, resumed_fit_s=kept.resumed_fit_s)

    def save(target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for file_name, content in files.items():
            (target / file_name).write_bytes(content)

    return TrainResult(outputs=outputs, hyperparameters=hyper, save=save, info=info)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Run cNMF and return its :class:`~topiceval.protocol.TopicOutputs` (see :func:`train`).

    Examples
    --------
    >>> from topiceval import datasets
    >>> from topiceval.adapters import cnmf
    >>> adata = datasets.preprocess(datasets.load_default())  # doctest: +SKIP
    >>> outputs = cnmf.fit(adata, n_topics=11, seed=0, replicates=20)  # doctest: +SKIP
    """
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs


# --------------------------------------------------------------------------- finished runs
_SCORE_FILE = re.compile(r"^(?P<name>.+)\.gene_spectra_score\.k_(?P<k>\d+)\.dt_(?P<dt>[0-9_eE+-]+)\.txt$")


def _runs(folder: Path) -> list[tuple[str, int, str, Path]]:
    found = []
    for path in sorted(folder.glob("*.gene_spectra_score.k_*.dt_*.txt")):
        match = _SCORE_FILE.match(path.name)
        if match:
            found.append((match["name"], int(match["k"]), match["dt"], path.parent))
    return found


def read_run(folder: PathLike, *, k: int | None = None, density_threshold: float | None = None,
             topic_gene: str = "score", name: str | None = None) -> TopicOutputs:
    """Read a finished cNMF run as :class:`~topiceval.protocol.TopicOutputs`.

    Parameters
    ----------
    folder
        cNMF's ``OUTPUT_DIR/NAME`` folder (the one holding ``NAME.gene_spectra_score.k_K.dt_D.txt``),
        or ``OUTPUT_DIR`` when it holds a single run.
    k, density_threshold
        Which consensus to read when the folder holds several (``None``: the only one).
    topic_gene
        ``"score"`` (the gene spectra scores, signed) or ``"tpm"`` (the TPM spectra, rows scaled
        to sum 1); see the module docstring.
    name
        Model name (default ``"cnmf"``).

    Returns
    -------
    TopicOutputs
        ``topic_gene`` ``(K, n_genes)``, ``cell_topic`` ``(n_cells, K)`` = the consensus usages
        normalised to the simplex (when the usage file is there), programs in cNMF's order.

    Raises
    ------
    InputError
        No run, several runs and no choice, a missing file, files that disagree.
    """
    import pandas as pd

    if topic_gene not in _TOPIC_GENE:
        raise InputError(f"cnmf: topic_gene must be one of {', '.join(_TOPIC_GENE)}, got {topic_gene!r}")
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"cNMF run folder not found: {root}")
    runs = _runs(root) or [run for sub in sorted(p for p in root.iterdir() if p.is_dir()) for run in _runs(sub)]
    if not runs:
        raise InputError(f"{root} holds no finished cNMF run (no *.gene_spectra_score.k_*.dt_*.txt; run "
                         "cnmf consensus first)")
    chosen = [r for r in runs if (k is None or r[1] == k)
              and (density_threshold is None or math.isclose(float(r[2].replace("_", ".")), density_threshold))]
    described = ", ".join(f"{r[0]} K={r[1]} density_threshold={r[2].replace('_', '.')}" for r in runs)
    if len(chosen) != 1:
        what = "no run matches" if not chosen else "several runs match"
        raise InputError(f"{root}: {what} k={k}, density_threshold={density_threshold}; runs there: "
                         f"{described} (name k and density_threshold)")
    run_name, run_k, dt, where = chosen[0]
    stem = f"{run_name}.%s.k_{run_k}.dt_{dt}"
    matrix_path = where / (f"{stem % 'gene_spectra_score'}.txt" if topic_gene == "score"
                           else f"{stem % 'gene_spectra_tpm'}.txt")
    usage_path = where / f"{stem % 'usages'}.consensus.txt"
    if not matrix_path.is_file():
        raise InputError(f"cNMF run {run_name!r} (K={run_k}) lacks {matrix_path.name}")

    def table(path: Path) -> pd.DataFrame:
        try:
            return pd.read_csv(path, sep="\t", index_col=0)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read cNMF file {path}: {exc}") from None

    spectra = table(matrix_path)  # programs x genes
    if spectra.shape[0] != run_k:
        raise InputError(f"{matrix_path.name} has {spectra.shape[0]} programs, its name says K={run_k}")
    values = spectra.to_numpy(dtype=np.float64)
    if topic_gene == "tpm":
        values = normalize_rows(np.clip(values, 0, None))
    cell_topic = None
    if usage_path.is_file():
        usage = table(usage_path)  # cells x programs
        if [str(c) for c in usage.columns] != [str(c) for c in spectra.index]:
            raise InputError(f"{usage_path.name} has programs {preview(usage.columns)}, {matrix_path.name} has "
                             f"{preview(spectra.index)}")
        cell_topic = normalize_rows(np.clip(usage.to_numpy(dtype=np.float64), 0, None))
    return TopicOutputs(
        topic_gene=values,
        gene_names=np.asarray([str(g) for g in spectra.columns], dtype=object),
        cell_topic=cell_topic,
        name=name or "cnmf",
        metadata={"source": "cnmf run", "folder": str(where), "run": run_name, "k": run_k,
                  "density_threshold": float(dt.replace("_", ".")), "topic_gene": topic_gene,
                  "topic_gene_file": str(matrix_path),
                  "cell_names": None if cell_topic is None else [str(c) for c in usage.index]},
    )


def load_run(folder: PathLike, *, k: int | None = None, density_threshold: float | None = None,
             topic_gene: str = "score", name: str | None = None) -> PrecomputedAdapter:
    """A finished cNMF run as a :class:`~topiceval.adapters.PrecomputedAdapter` (see :func:`read_run`).

    Examples
    --------
    >>> from topiceval.adapters import cnmf
    >>> model = cnmf.load_run("example_data/example_cNMF", k=10, density_threshold=0.01)  # doctest: +SKIP
    >>> te.evaluate(model.outputs(), gene_sets="hallmark", labels=labels)  # doctest: +SKIP
    """
    from topiceval.adapters.precomputed import PrecomputedAdapter

    return PrecomputedAdapter(read_run(folder, k=k, density_threshold=density_threshold,
                                       topic_gene=topic_gene, name=name))
