"""d-scIGM (Hu et al.), topiceval's own PyTorch implementation in :mod:`topiceval.models.dscigm`.

Install: ``pip install "topiceval[dscigm]"`` (only torch, ``>=2.1,<2.14``; install
``torch==2.13.0`` first for the CPU build).

Input: ``adata.X`` by default, the log-normalised expression of the highly variable genes, which is
what the authors' released script trains on (``*_HIGHPRE.csv``: ``log1p`` of normalised
expression, scored by a Poisson likelihood extended to non-integer values). ``layer="counts"``
trains on raw counts instead; the encoder then sees ``log1p(counts)`` (``encoder_log1p="auto"``).

Defaults follow the authors' released code (nbnbhwyy/d-scIGM, ``model/main.py``,
``model/trainer.py``), with the dense encoder the scE2TM paper evaluates:

* architecture: six layers of 100 topics, embeddings of size 200, encoder widths
  ``hidden_sizes="authors"`` = 9275, 1387, 1066, 447, 147, 26 (the authors' ``--hidden_size``: the
  sizes of their prior-knowledge layers, here dense); ``hidden_sizes="compact"`` is topiceval
  0.1's 512, 256, 128, 64, 32, 32 (about 40x fewer weights: faster), or give a list;
* training (``schedule="authors"``): per minibatch an encoder step, then a decoder step after a
  second forward pass, two Adam optimisers (lr 1e-2), gradient norm clipped at 100, gradients
  accumulated as the authors' code does (see
  :class:`~topiceval.models.dscigm.TrainingOptions`); ``schedule="alternating"`` keeps each step
  to its own pass's gradient, ``schedule="joint"`` is 0.1's single step; batch 32 with the last
  partial batch dropped (``drop_last``); 500 epochs; 50 Weibull samples averaged per pass; the
  top layer's KL weighted 0 as in the authors' script (``top_kl_weight=1``: the full ELBO);
* outputs (``theta_estimate="sampled"``): as the authors extract them, each cell's ``theta`` an
  average of 50 Weibull draws (seeded by ``seed``); ``theta_estimate="mean"`` gives the
  deterministic posterior means (0.1's outputs).

Variants:

* dense encoder (default, ``prior=None``): the paper's evaluation setting "without prior
  knowledge", which the authors' released code does not contain; it takes their widths with
  dense layers and feeds the input as their code does (as it is). On Yan it collapses (below):
  every input is non-negative, so Adam's first steps (each weight moves by about the learning
  rate, 1e-2, mostly in one direction per unit) shift every unit's pre-activation by about
  ``lr x`` a cell's summed input (about 2500 on Yan), the same way for every cell; within one
  epoch all first-layer ``tanh`` units saturate at the same sign for every cell and the encoder's
  output no longer depends on the cell. The scE2TM paper reports the same symptoms for d-scIGM
  (very low IP, TD near 0.1). ``encoder_center=True`` subtracts each gene's training mean from
  the encoder input, which removes the common shift (cells keep distinct codes: at 100 epochs
  12 topics, IP 0.822 for seed 0, but 6, 0.667 for seed 1; with compact widths at 500 epochs
  13 / 15 / 11 topics, IP 0.700 / 0.800 / 0.867 for seeds 0 / 1 / 2, where compact widths alone
  collapse); an option, not the default (the evidence is in ``docs/models.md``);
* ``prior="authors"`` with ``prior_dir=PATH`` (the authors' ``datasets/`` folder: their two
  ``hierarchical_prior_knowledge_*.pkl`` files and ``9606.protein.links.v11.5_700.txt``): their
  released setting, every encoder layer masked as their ``model/model.py`` builds it (input gene
  -> gene node iff the same symbol or a STRING link, then gene nodes -> 1387 -> 1066 -> 447 ->
  147 -> 26 Reactome pathways by their hierarchy's edges), their ``CustomizedLinear`` init
  (``mask_init="authors"``). The pickles are read without running anything in them
  (:func:`~topiceval.models.dscigm.read_hierarchical_prior`). ``prior_string=false`` connects
  each gene to its own node only, for a folder without the STRING file;
* ``prior="reactome"`` (or any gene-set collection :func:`topiceval.gene_sets.load` accepts): the
  first encoder layer has one unit per pathway holding ``prior_min_genes`` or more model genes and
  connects only the pathway's genes; a GMT collection is flat, so only the first layer is masked
  and the layers above it are dense.

Outputs:

* ``topic_gene`` = ``Phi_0^T`` ``(K, V)``: each layer-0 topic's distribution over genes (rows sum
  to 1), ``softmax`` over genes of ``alpha_0 rho^T`` (the authors save the logits
  ``rho alpha_0^T``: the same gene ranking); ``output_layer=t`` scores layer ``t``'s topics
  through ``(Phi_0 ... Phi_t)^T``;
* ``cell_topic`` = layer 0's ``theta`` (the layer next to the genes, whose topics
  ``topic_gene`` describes; the first 100 columns of the authors' ``*_embedding.csv``) with rows
  scaled to sum 1 (argmax and IP unchanged);
* ``cell_embedding`` = the unnormalised ``theta`` of all layers side by side
  ``(n_cells, sum K_t)``, the authors' cell representation (their ``*_embedding.csv``).

Reproduction (Yan, the authors' released run: 15 argmax topics, IP 0.811 on layer 0):
``topiceval train dscigm --data yan.h5ad --seed S`` at 500 epochs, the authors' hierarchy
(``--set prior=authors --set prior_dir=d-scIGM/datasets --set prior_string=false``; the STRING
file was not available here) gives 22 / 18 / 17 argmax topics and IP 0.856 / 0.856 / 0.844 for
seeds 0 / 1 / 2; the dense default collapses (seed 0: 2 topics, IP 0.467; seed 1: 1 topic, IP
0.333), ``prior="reactome"`` meets the bar for two seeds of three (17, 0.878; 6, 0.578; 20,
0.833). See ``docs/models.md``.

Differences from the authors' code that remain: a step with a non-finite loss is skipped (theirs
checks one parameter for NaN); cells are shuffled by a numpy generator; the KL floors the gamma
shape at 1e-30 inside ``lgamma``; ``-log1p(-u)`` for the Weibull noise; unused BatchNorm layers
are left out (see :mod:`topiceval.models.dscigm.model`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from topiceval.adapters._common import (
    check_positive_int,
    default_threads,
    gene_names,
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

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_TOPICS", "EXTRA", "HIDDEN_PRESETS", "fit", "train"]

EXTRA = "dscigm"
DEFAULT_TOPICS = 100
DEFAULT_EPOCHS = 500
#: Named encoder widths for up to six layers (more layers repeat the last): the authors' and
#: topiceval 0.1's.
HIDDEN_PRESETS: dict[str, tuple[int, ...]] = {
    "authors": (9275, 1387, 1066, 447, 147, 26),
    "compact": (512, 256, 128, 64, 32, 32),
}
THETA_ESTIMATES = ("sampled", "mean")
#: Model options and their defaults.
DEFAULTS: dict[str, Any] = {
    "n_layers": 6,
    "hidden_sizes": "authors",  # a preset name or one width per layer
    "embed_size": 200,
    "batch_size": 32,
    "lr": 1e-2,
    "weight_decay": 0.0,
    "clip_norm": 100.0,
    "schedule": "authors",  # "authors", "alternating" or "joint"
    "drop_last": True,
    "theta_estimate": "sampled",  # "sampled" (authors: 50-sample Weibull averages) or "mean"
    "euler_gamma": 0.5771999955177307,  # the authors' (0.5772 in float32); 0.5772156649015329 is exact
    "n_samples": 50,
    "shape_max": 10.0,
    "top_kl_weight": 0.0,
    "prior": None,  # None (dense encoder), "authors" (their hierarchy, from prior_dir) or a gene-set collection
    "prior_dir": None,  # prior="authors": the authors' datasets/ folder (two .pkl files, STRING links)
    "prior_string": True,  # prior="authors": connect genes to their STRING neighbours' gene nodes
    "prior_min_genes": 5,
    "checkpoint": None,  # a file: the training state is saved there every checkpoint_every epochs, and resumed
    "checkpoint_every": 10,
    "mask_init": "auto",  # masked layers' initial weights: "fan_in", "authors"; "auto": "authors" with prior="authors"
    "encoder_log1p": "auto",  # "auto": log1p for integer (count) input; True / False
    "encoder_center": False,  # subtract each gene's mean encoder input (keeps the dense encoder from collapsing)
    "output_layer": 0,
    "threads": default_threads(),
    "progress": None,
}


def _hidden_sizes(options: dict[str, Any], n_layers: int) -> tuple[int, ...]:
    value = options["hidden_sizes"] or "authors"
    if isinstance(value, str):
        key = value.strip().lower()
        if key in HIDDEN_PRESETS:
            preset = HIDDEN_PRESETS[key]
            return tuple(preset[min(t, len(preset) - 1)] for t in range(n_layers))
        # The command line's form: --set hidden_sizes=512,256,128
        value = [part for part in key.replace(" ", "").split(",") if part]
        if not value or not all(part.isdigit() for part in value):
            raise InputError(f"dscigm: hidden_sizes must be {' or '.join(map(repr, HIDDEN_PRESETS))} or a list "
                             f"of widths (512,256,...), got {options['hidden_sizes']!r}")
    hidden = tuple(int(h) for h in value)
    if len(hidden) != n_layers:
        raise InputError(f"dscigm: {len(hidden)} hidden_sizes for n_layers = {n_layers}; give one per layer")
    if min(hidden) < 1:
        raise InputError(f"dscigm: hidden_sizes must be positive, got {list(hidden)}")
    return hidden


def _flag(value: Any, auto: bool, name: str) -> bool:
    if value == "auto":
        return auto
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise InputError(f"dscigm: {name} must be 'auto', true or false, got {value!r}")
    return bool(value)


def _prior_hashes(folder: str | None, string_links: bool) -> dict[str, str]:
    """sha256 of each prior file read (provenance of a ``prior="authors"`` run)."""
    import hashlib
    from pathlib import Path

    from topiceval.models.dscigm.prior import HIERARCHY_EDGES_FILE, HIERARCHY_LEVELS_FILE, STRING_LINKS_FILE

    names = [HIERARCHY_LEVELS_FILE, HIERARCHY_EDGES_FILE] + ([STRING_LINKS_FILE] if string_links else [])
    out = {}
    for name in names:
        digest = hashlib.sha256()
        with open(Path(str(folder)) / name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        out[name] = digest.hexdigest()
    return out


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: train d-scIGM on ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``adata.X`` unless ``params.layer`` names a layer.
    params
        ``n_topics`` (topics of every layer, default 100), ``epochs`` (default 500), ``seed`` and
        the options of :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``topic_gene`` ``(n_topics, n_genes)``, ``cell_topic`` ``(n_cells, n_topics)``,
        ``cell_embedding`` ``(n_cells, n_layers * n_topics)``; ``save`` writes ``weights.pt`` and
        ``model.json`` (read back with :meth:`topiceval.models.dscigm.DSCIGM.load`).
    """
    import_extra("torch", EXTRA, "dscigm")
    from topiceval.models.dscigm import DSCIGM, DSCIGMConfig, TrainingOptions, pathway_mask, read_hierarchical_prior

    options = parse_options(params.options, DEFAULTS, "dscigm")
    n_topics = check_positive_int(params.n_topics or DEFAULT_TOPICS, "n_topics", 2)
    epochs = check_positive_int(params.epochs or DEFAULT_EPOCHS, "epochs")
    n_layers = check_positive_int(options["n_layers"], "n_layers")
    output_layer = int(options["output_layer"])
    if not 0 <= output_layer < n_layers:
        raise InputError(f"dscigm: output_layer must be in 0..{n_layers - 1}, got {output_layer}")
    hidden = _hidden_sizes(options, n_layers)
    estimate = str(options["theta_estimate"]).strip().lower()
    if estimate not in THETA_ESTIMATES:
        raise InputError(f"dscigm: theta_estimate must be one of {', '.join(THETA_ESTIMATES)}, got "
                         f"{options['theta_estimate']!r}")
    data = model_input(adata, params.layer, default=None, model="dscigm", needs="non-negative values")
    genes = gene_names(adata)

    mask: Any = None
    pathways: tuple[str, ...] = ()
    prior_info: dict[str, Any] | None = None
    prior = options["prior"]
    if isinstance(prior, str) and prior.strip().lower() in ("", "none", "null", "dense"):
        prior = None
    hierarchical = isinstance(prior, str) and prior.strip().lower() == "authors"
    mask_init = str(options["mask_init"]).strip().lower()
    if mask_init == "auto":
        mask_init = "authors" if hierarchical else "fan_in"
    if mask_init not in ("fan_in", "authors"):
        raise InputError(f"dscigm: mask_init must be 'auto', 'fan_in' or 'authors', got {options['mask_init']!r}")
    if hierarchical:
        prior = "authors"
        if not options["prior_dir"]:
            raise InputError("dscigm: prior='authors' needs prior_dir, the authors' datasets/ folder "
                             "(hierarchical_prior_knowledge_layer.pkl, hierarchical_prior_knowledge_edge.pkl, "
                             "9606.protein.links.v11.5_700.txt)")
        tree = read_hierarchical_prior(options["prior_dir"],
                                       string_links=_flag(options["prior_string"], True, "prior_string"))
        if len(tree.sizes) != n_layers:
            raise InputError(f"dscigm: the prior in {tree.source} has {len(tree.sizes)} levels; "
                             f"prior='authors' needs n_layers = {len(tree.sizes)}, got {n_layers}")
        mask = tree.masks(genes)
        hidden = tree.sizes
        pathways = tuple(tree.levels[-1])
        connected = int((mask[0].getnnz(axis=1) > 0).sum())
        if connected == 0:
            raise InputError(f"dscigm: none of the {len(genes)} genes is a gene node of the prior in {tree.source} "
                             "(wrong species or identifiers)")
        prior_info = {"source": tree.source, "kind": "hierarchy", "sizes": list(hidden),
                      "sha256": _prior_hashes(tree.source, _flag(options["prior_string"], True, "prior_string")),
                      "string_links": len(tree.links), "n_genes_covered": connected,
                      "connections": [int(m.nnz) for m in mask]}
    elif prior is not None:
        built = pathway_mask(genes, prior, min_genes=check_positive_int(options["prior_min_genes"], "prior_min_genes"))
        mask, pathways = built.mask, tuple(built.pathways)
        hidden = (built.n_pathways, *hidden[1:])
        prior_info = {"source": built.source, "n_pathways": built.n_pathways,
                      "n_genes_covered": built.n_genes_covered}
    config = DSCIGMConfig(
        n_genes=adata.n_vars, topic_sizes=(n_topics,) * n_layers, hidden_sizes=hidden,
        embed_size=check_positive_int(options["embed_size"], "embed_size"),
        n_samples=check_positive_int(options["n_samples"], "n_samples"),
        shape_max=float(options["shape_max"]), top_kl_weight=float(options["top_kl_weight"]),
        encoder_log1p=_flag(options["encoder_log1p"], data.integer, "encoder_log1p"),
        encoder_center=_flag(options["encoder_center"], False, "encoder_center"),
        euler_gamma=float(options["euler_gamma"]), pathways=pathways,
        masked_layers=(n_layers if hierarchical else 1) if pathways else 0, mask_init=mask_init,
    )
    training = TrainingOptions(
        epochs=epochs, batch_size=check_positive_int(options["batch_size"], "batch_size"),
        lr=float(options["lr"]), weight_decay=float(options["weight_decay"]),
        clip_norm=float(options["clip_norm"]), schedule=str(options["schedule"]),
        drop_last=_flag(options["drop_last"], True, "drop_last"),
        progress=resolve_progress(options, params.options, params.progress),
    )
    started = time.perf_counter()
    with torch_threads(options["threads"]):
        model = DSCIGM(config, genes, mask, seed=params.seed)
        model.fit(data.matrix, training, seed=params.seed, checkpoint=options["checkpoint"],
                  checkpoint_every=check_positive_int(options["checkpoint_every"], "checkpoint_every"))
        thetas = model.transform(data.matrix, sample=estimate == "sampled", seed=params.seed)
        topic_gene = model.topic_gene(output_layer)
    fitted = time.perf_counter()

    variant = "hierarchy-masked" if hierarchical else "pathway-masked" if prior is not None else "dense"
    outputs = TopicOutputs(
        topic_gene=topic_gene,
        gene_names=genes,
        cell_topic=normalize_rows(thetas[output_layer]),
        cell_embedding=np.concatenate(thetas, axis=1),
        name="dscigm",
        metadata={"model": "dscigm", "seed": params.seed, "input": data.source,
                  "variant": variant},
    )
    hyper = {
        "n_topics": n_topics, "epochs": epochs, "seed": params.seed, "input": data.source,
        "variant": variant,
        **{k: v for k, v in options.items()
           if k not in ("progress", "hidden_sizes", "encoder_log1p", "encoder_center", "drop_last", "mask_init",
                        "checkpoint", "checkpoint_every")},
        "drop_last": training.drop_last, "theta_estimate": estimate,
        "prior": None if prior is None else str(prior),
        "hidden_sizes": list(hidden), "encoder_log1p": config.encoder_log1p,
        "encoder_center": config.encoder_center, "mask_init": mask_init,
    }
    last = model.history[-1] if model.history else {}
    info = {"fit_s": fitted - started, "final_loss": last.get("loss"), "final_nll": last.get("nll"),
            "skipped_steps": int(sum(h["skipped_steps"] for h in model.history)), "prior": prior_info,
            # every epoch's seconds, those of earlier processes included when the fit resumed from a checkpoint
            "epochs_s": float(sum(h["seconds"] for h in model.history)),
            "resumed_at_epoch": model.resumed_at_epoch,
            # training seconds of earlier processes, up to the checkpoint this fit resumed from
            "resumed_fit_s": float(sum(h["seconds"] for h in model.history[:model.resumed_at_epoch]))}
    return TrainResult(outputs=outputs, hyperparameters=hyper, save=model.save, info=info)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Train d-scIGM and return its :class:`~topiceval.protocol.TopicOutputs` (see :func:`train`)."""
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
