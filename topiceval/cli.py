"""The ``topiceval`` command line: parse, call the library, print. It computes nothing itself.

User errors (bad files, shapes, unknown options) exit with status 2 and a one-line message on
stderr, never a traceback (set ``TOPICEVAL_DEBUG=1`` to see one). Output files are written
atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from topiceval.errors import TopicEvalError
from topiceval.examples import EXAMPLES

__all__ = ["main", "build_parser"]

def _metric_names() -> str:
    from topiceval.evaluate import METRIC_ALIASES, METRICS

    return ",".join([*METRICS, *METRIC_ALIASES])


def _resolutions(text: str) -> tuple[float, ...]:
    """``0.5,1,1.5`` or ``START:STOP:STEP`` (STOP excluded, like the paper's ``0:2:0.1``)."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(round((stop - start) / step))
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas or START:STOP:STEP, got {text!r}"
        ) from None
    return tuple(values)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from topiceval import __version__

    parser = argparse.ArgumentParser(
        prog="topiceval",
        description="Score single-cell embedded topic models on interpretability and clustering.",
    )
    parser.add_argument("--version", action="version", version=f"topiceval {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    score = sub.add_parser(
        "score",
        help="score a model's outputs (TC, TD, TQ, IP, ORA, GSEA, ARI, NMI)",
        description="Score topic-model outputs and write the scores as JSON.",
        epilog="Example: topiceval score --example yan_nmf --out result.json",
    )
    inputs = score.add_argument_group("inputs")
    inputs.add_argument("--example", choices=sorted(EXAMPLES), help="use a shipped example's files as defaults")
    inputs.add_argument("--topic-gene", metavar="BETA", help="topic-gene matrix K x V: .csv (header of gene names optional), .npy or .h5ad")
    inputs.add_argument("--genes", metavar="GENES", help="gene names: JSON list or one per line (optional if BETA has a header)")
    inputs.add_argument("--cell-topic", metavar="THETA", help="cell-topic matrix n x K: .csv or .npy")
    inputs.add_argument("--cell-embedding", metavar="EMB", help="cell embedding n x d for clustering metrics: .csv or .npy")
    inputs.add_argument("--labels", metavar="LABELS", help="cell labels: JSON list, one per line, file.csv:column or file.h5ad:column")
    inputs.add_argument("--gene-sets", metavar="GMT", help="GMT file (plain or .gz), shipped collection (hallmark, reactome, mouse_hallmark) or MSigDB msigdb:NAME@VERSION (e.g. msigdb:c2@2024.1.Hs, downloaded once into the cache)")
    inputs.add_argument("--gene-set-case", choices=["upper", "exact"], default="upper", help="compare symbols upper-cased (default) or exactly")
    inputs.add_argument("--name", help="model name in the output (default: file name)")
    options = score.add_argument_group("metrics")
    options.add_argument("--metrics", default=None, help=f"comma-separated metrics (default: tc,td,tq,ip where inputs allow); valid: {_metric_names()}")
    options.add_argument("--top-n", type=int, default=10, help="top genes per topic (default 10)")
    options.add_argument("--tc-zero-cooccurrence", type=float, choices=[0.0, -1.0], default=0.0, help="TC of a never co-occurring pair: 0 (reference, default) or -1 (NPMI limit)")
    options.add_argument("--td-method", choices=["unique", "exclusive"], default="unique", help="TD as paper Eq. 3 (unique, default) or reference code (exclusive)")
    options.add_argument("--seed", type=int, default=0, help="seed of every stochastic step (default 0)")
    enrich = score.add_argument_group("enrichment (--metrics ora,gsea)")
    enrich.add_argument("--ora-background", choices=["gene_sets", "vocabulary"], default="gene_sets", help="ORA universe: all genes of the gene sets (reference, gseapy.enrich; default) or the model's genes")
    enrich.add_argument("--ora-bh-scope", choices=["hit_sets", "all_sets"], default="hit_sets", help="ORA Benjamini-Hochberg per topic over the sets sharing a gene with it (reference, default) or over all tested sets")
    enrich.add_argument("--alpha", type=float, default=0.01, help="ORA adjusted p-value at or below which a pathway is enriched (default 0.01)")
    enrich.add_argument("--ora-min-size", type=int, default=None, help="test only sets with at least this many background genes (default: no bound)")
    enrich.add_argument("--ora-max-size", type=int, default=None, help="test only sets with at most this many background genes (default: no bound)")
    enrich.add_argument("--gsea-engine", choices=["native", "gseapy", "blitzgsea"], default="native", help="GSEA engine: native (default), gseapy (reference, slow) or blitzgsea; the last two need topiceval[gsea]")
    enrich.add_argument("--n-perm", type=int, default=1000, help="GSEA permutations (default 1000)")
    enrich.add_argument("--gsea-fdr", type=float, default=0.01, help="GSEA FDR at or below which a pathway is enriched (default 0.01)")
    enrich.add_argument("--gsea-rank-by", choices=["topic_gene", "log"], default="topic_gene", help="rank genes by the topic-gene values (reference, default) or their centred log")
    enrich.add_argument("--gsea-min-size", type=int, default=15, help="GSEA tests sets with at least this many model genes (default 15)")
    enrich.add_argument("--gsea-max-size", type=int, default=500, help="GSEA tests sets with at most this many model genes (default 500)")
    enrich.add_argument("--gsea-device", default="cpu", help="native GSEA null on cpu (default), cuda[:N] (torch with CUDA) or auto (CUDA when present)")
    enrich.add_argument("--n-jobs", type=int, default=1, help="threads for GSEA (default 1; -1: all cores); changes no number")
    clustering = score.add_argument_group("clustering (--metrics ari,nmi or clustering)")
    clustering.add_argument("--cluster-method", choices=["louvain", "leiden"], default="louvain", help="community detection (default louvain, as the paper)")
    clustering.add_argument("--cluster-resolutions", type=_resolutions, default=None, metavar="R", help="resolutions to sweep: 0.5,1.0 or START:STOP:STEP (default 0:2:0.1, the paper's 0.0 .. 1.9)")
    clustering.add_argument("--cluster-n-neighbors", type=int, default=15, metavar="K", help="kNN graph size, the cell itself included (default 15, as scanpy)")
    clustering.add_argument("--cluster-knn", choices=["auto", "exact", "pynndescent"], default="auto", help="kNN search (default auto: exact up to 100,000 cells)")
    clustering.add_argument("--cluster-weighted", choices=["auto", "yes", "no"], default="auto", help="weight edges by connectivity (default auto: Louvain unweighted, Leiden weighted, as scanpy)")
    score.add_argument("--out", metavar="JSON", help="write the result here (default: print JSON to stdout)")
    score.add_argument("--details", metavar="DIR", help="write the enrichment tables of every tested pair here (ora.csv, gsea.csv)")
    score.set_defaults(func=_cmd_score)

    train = sub.add_parser(
        "train",
        help="train a topic model on an h5ad and write outputs that `score` reads",
        description="Train a registered topic model on an h5ad file. DIR receives outputs.h5ad "
        "(topic-gene, cell-topic, cell embedding and the input's obs), config.json (hyperparameters, "
        "seed, data file and sha256, versions, timings) and model/ (weights).",
        epilog="Example: topiceval train sce2tm --data pbmc.h5ad --out runs/pbmc --topics 100 --seed 0; "
        "then topiceval score --topic-gene runs/pbmc/outputs.h5ad --labels runs/pbmc/outputs.h5ad:cell_type "
        "--gene-sets reactome",
    )
    train.add_argument("model", nargs="?", help="model name (see --list)")
    train.add_argument("--list", action="store_true", help="list the trainable models and the extra each needs")
    train.add_argument("--data", metavar="H5AD", help="cells x genes .h5ad (X or --layer holds the model input)")
    train.add_argument("--out", metavar="DIR", help="output folder (must be absent or empty unless --overwrite)")
    train.add_argument("--epochs", type=int, help="training epochs (default: the model's)")
    train.add_argument("--topics", type=int, dest="n_topics", help="number of topics K (default: the model's)")
    train.add_argument("--seed", type=int, default=0, help="seed of every random step (default 0)")
    train.add_argument("--label-key", help="obs column of cell labels, checked and kept in outputs.h5ad (training is label-free)")
    train.add_argument("--embedding-key", help="obsm key of an external cell embedding (scE2TM: default X_scGPT, else a PCA fallback)")
    train.add_argument("--layer", help="layer holding the model input (default X)")
    train.add_argument("--preprocess", type=int, metavar="N_GENES", dest="n_top_genes",
                       help="first apply the paper's preprocessing to raw counts (normalise, log1p, N highly variable genes; topiceval.datasets.preprocess)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="options",
                       help="model-specific option, repeatable; VALUE is read as JSON when it parses (e.g. --set ecr_weight=20 --set device=cpu)")
    train.add_argument("--overwrite", action="store_true", help="replace a non-empty DIR")
    train.set_defaults(func=_cmd_train)
    _add_gene_sets_parser(sub)
    _add_leaderboard_parsers(sub)
    return parser


def _add_leaderboard_parsers(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "benchmark",
        help="run a leaderboard (models x datasets x seeds x gene sets) and write its report",
        description="Train every model of a leaderboard config on every dataset and seed, score each "
        "against every gene-set collection, and write index.html, summary.md and CSV/JSON of every number. "
        "Finished cells are cached and never recomputed: a killed run resumes.",
        epilog="Example: topiceval benchmark --config reports/leaderboard/leaderboard.toml",
    )
    bench.add_argument("--config", required=True, metavar="TOML", help="leaderboard configuration (TOML)")
    bench.add_argument("--out", metavar="DIR", help="report folder (default: output.dir of the config, else its folder)")
    bench.add_argument("--cache", metavar="DIR", help="cache folder (default: output.cache of the config, else "
                       "$TOPICEVAL_CACHE/leaderboard or the user cache folder)")
    bench.add_argument("--backend", choices=["joblib", "dask", "sequential"], help="override run.backend")
    bench.add_argument("--n-jobs", type=int, help="override run.n_jobs (parallel cells)")
    bench.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler address (default: a LocalCluster)")
    bench.add_argument("--refresh", action="store_true", help="recompute the cells of this config even if cached")
    bench.add_argument("--report-only", action="store_true", help="only redraw the report from the results in --out")
    bench.add_argument("--baseline-out", metavar="JSON", help="also write a regression baseline of every score")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.set_defaults(func=_cmd_benchmark)

    regress = sub.add_parser(
        "regress",
        help="compare metric values with a baseline; non-zero exit on drift",
        description="Compare current scores (an evaluation JSON, a leaderboard results.json or folder, or a "
        "baseline) with a baseline. Exit 0: within tolerance; 1: drift or missing values; 3: the "
        "configuration changed (config_sha256 differs: values not comparable, not a regression); 2: bad input.",
        epilog="Example: topiceval regress --baseline baseline.json --current result.json --rtol GSEA_N=0.05",
    )
    regress.add_argument("--baseline", required=True, metavar="JSON", help="baseline file (topiceval-baseline format)")
    regress.add_argument("--current", required=True, metavar="JSON", help="current scores")
    regress.add_argument("--rtol", action="append", default=[], metavar="[METRIC=]VALUE",
                         help="relative tolerance, per metric or (bare) for every metric; repeatable")
    regress.add_argument("--atol", action="append", default=[], metavar="[METRIC=]VALUE",
                         help="absolute tolerance, per metric or (bare) for every metric; repeatable")
    regress.add_argument("--all", action="store_true", help="show every compared value, not only the failing ones")
    regress.add_argument("--write-baseline", action="store_true",
                         help="write --current as a new baseline to --baseline (with the given tolerances) and exit")
    regress.set_defaults(func=_cmd_regress)

    demo = sub.add_parser(
        "demo",
        help="train scE2TM, NMF and LDA on the shipped dataset, score them, write an HTML report",
        description="The main job: on the shipped Pollen et al. 2014 dataset, train scE2TM and the NMF / LDA "
        "baselines with short schedules, score them with every metric (TC, TD, TQ, IP, ORA, GSEA, ARI, NMI), "
        "write the report and print the leaderboard. Seeds are fixed: the numbers are reproducible.",
    )
    demo.add_argument("--out", default="reports/demo", metavar="DIR", help="report folder (default reports/demo)")
    demo.add_argument("--models", default="sce2tm,nmf,lda", help="comma-separated models, or 'installed' "
                      "(every registered model whose extra is installed); default sce2tm,nmf,lda")
    demo.add_argument("--n-jobs", type=int, help="parallel cells (default 2)")
    demo.add_argument("--cache", metavar="DIR", help="keep trained models here (default: a temporary folder)")
    demo.add_argument("--quick", action="store_true", help="tiny schedules for a smoke test (numbers meaningless)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)


def _add_gene_sets_parser(sub: argparse._SubParsersAction) -> None:
    gene_sets = sub.add_parser(
        "gene-sets",
        help="list, download and inspect gene-set collections (MSigDB registry, cache)",
        description="MSigDB releases and collections, the download cache, and GMT file summaries.",
    )
    actions = gene_sets.add_subparsers(dest="gene_sets_command", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser(
        "list",
        help="known MSigDB releases, shipped collections and cached files",
        description="List the MSigDB registry (releases and collections), the shipped "
        "collections and the files in the cache.",
    )
    listing.add_argument("--release", metavar="V", help="list one release's collections with file names")
    listing.set_defaults(func=_cmd_gene_sets_list)
    fetch = actions.add_parser(
        "fetch",
        help="download an MSigDB collection into the cache",
        description="Download an MSigDB collection (GMT, gene symbols) into the cache and record "
        "its sha256; a cached file is checked, not downloaded again.",
        epilog="Example: topiceval gene-sets fetch c2 --version 2024.1.Hs",
    )
    fetch.add_argument("name", metavar="NAME", help="collection: h, c2, c2.cp.reactome, mh, all (whole database), ...")
    fetch.add_argument("--version", dest="release", metavar="V", help="MSigDB release, e.g. 2024.1.Hs, 2024.1.Mm, 7.1")
    fetch.add_argument("--force", action="store_true", help="download again; the bytes must match the recorded sha256")
    fetch.add_argument("--replace-checksum", action="store_true", help="download again and accept new bytes, recording their sha256")
    fetch.add_argument("--timeout", type=float, default=60.0, help="socket time-out in seconds (default 60)")
    fetch.add_argument("--retries", type=int, default=3, help="attempts for transient failures (default 3)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(func=_cmd_gene_sets_fetch)
    info = actions.add_parser(
        "info",
        help="summarise a gene-set file: sets, genes, sizes, coverage of a gene list",
        description="Summarise a collection (GMT path, shipped name or msigdb:NAME@VERSION "
        "already in the cache): number of sets and genes, set-size distribution and, with "
        "--genes, how many of those genes the collection knows.",
    )
    info.add_argument("file", metavar="FILE", help="GMT file, shipped collection or msigdb:NAME@VERSION")
    info.add_argument("--genes", metavar="GENES", help="gene list (JSON list or one per line) to report coverage for")
    info.add_argument("--case", choices=["upper", "exact"], default="upper", help="symbol case rule (default upper)")
    info.add_argument("--species", choices=["human", "mouse"], help="species of the --genes list")
    info.add_argument("--cross-species", action="store_true", help="allow matching --species genes to the other species' sets (case-insensitive symbols)")
    info.set_defaults(func=_cmd_gene_sets_info)


def _cmd_gene_sets_list(args: argparse.Namespace) -> int:
    from topiceval.gene_sets import MSIGDB_RELEASES, SHIPPED, cache_dir, cached_files, resolve
    from topiceval.gene_sets.registry import base_url

    if args.release:
        entry = resolve(f"msigdb:all@{args.release}")
        release = entry.release
        print(f"MSigDB {release.version} ({release.species} symbols), {base_url()}/release/{release.version}/")
        width = max(len(c) for c in release.collections)
        for collection in release.collections:
            print(f"  {collection:<{width}}  {release.filename(collection):<44}  {release.description(collection)}")
        print(f"Fetch one with: topiceval gene-sets fetch {release.collections[2]} --version {release.version}")
        return 0
    print(f"MSigDB releases (from {base_url()}):")
    for version, release in MSIGDB_RELEASES.items():
        top = [c for c in release.collections if "." not in c]
        n_sub = len(release.collections) - len(top)
        print(f"  {version:<10} {release.species:<6} {' '.join(top)}  (+{n_sub} sub-collections)")
    print("  details: topiceval gene-sets list --release V")
    print("shipped collections:")
    for name, shipped in SHIPPED.items():
        print(f"  {name:<15} {shipped.species:<6} {shipped.description} [{shipped.release}]")
    root = cache_dir()
    files = cached_files(root)
    print(f"cache ({root}):" + ("" if files else " empty"))
    for cached in files:
        sha = cached.entry["sha256"][:12] if cached.entry else "not yet checked"
        print(f"  {cached.key}  {_size(cached.size)}  sha256 {sha}")
    return 0


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def _cmd_gene_sets_fetch(args: argparse.Namespace) -> int:
    from topiceval.gene_sets import cache_dir, fetch, read_gmt, resolve
    from topiceval.gene_sets.download import read_manifest

    entry = resolve(args.name, args.release)
    path = fetch(
        entry.collection,
        entry.version,
        force=args.force,
        replace_checksum=args.replace_checksum,
        timeout=args.timeout,
        retries=args.retries,
        progress=False if args.no_progress else None,
    )
    recorded = read_manifest(cache_dir()).get(entry.cache_key, {})
    gene_sets = read_gmt(path, source=entry.spec)
    print(f"{entry.spec}: {gene_sets.n_sets} sets, {gene_sets.n_genes} genes, {entry.species} symbols")
    print(f"  file   {path} ({_size(path.stat().st_size)})")
    print(f"  sha256 {recorded.get('sha256', gene_sets.sha256)} (recorded {recorded.get('recorded_at', '?')})")
    print(f"  use it: --gene-sets {entry.spec}  or  topiceval.gene_sets.load({entry.spec!r})")
    return 0


def _cmd_gene_sets_info(args: argparse.Namespace) -> int:
    from topiceval.errors import InputError
    from topiceval.gene_sets import load
    from topiceval.io import read_gene_names

    gene_sets = load(args.file, case=args.case, species=args.species,
                     cross_species=args.cross_species, download=False)
    config = gene_sets.config()
    print(f"{gene_sets.source}: {gene_sets.n_sets} sets, {gene_sets.n_genes} genes")
    print(f"  sha256   {gene_sets.sha256}")
    known = {k: config[k] for k in ("collection", "release", "species") if config[k]}
    if known:
        print("  " + ", ".join(f"{k} {v}" for k, v in known.items()))
    summary = gene_sets.size_summary()
    print(
        f"  set size min {summary['min']}, 25% {summary['q25']:g}, median {summary['median']:g}, "
        f"75% {summary['q75']:g}, max {summary['max']}, mean {summary['mean']:.1f}"
    )
    print("  sets by size: " + ", ".join(f"{k}: {v}" for k, v in summary["bins"].items()))
    if args.genes:
        genes = read_gene_names(args.genes)
        try:
            coverage = gene_sets.coverage(genes)
        except InputError as exc:
            print(f"  coverage of {args.genes}: 0 of {len(genes)} genes ({exc})")
            return 0
        print(
            f"  coverage of {args.genes}: {coverage.n_covered} of {coverage.n_genes} genes "
            f"({coverage.fraction:.1%}) appear in some set"
        )
        if coverage.missing:
            from topiceval._utils import preview

            print(f"  not in any set: {preview(coverage.missing, 10)}")
    return 0


def _parse_options(items: Sequence[str]) -> dict:
    import json

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TopicEvalError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _cmd_train(args: argparse.Namespace) -> int:
    from topiceval.adapters import registry

    if args.list:
        entries = registry.available()
        width = max(len(e.name) for e in entries)
        for entry in entries:
            missing = entry.missing()
            state = f"needs: pip install \"topiceval[{entry.extra}]\"" if missing else "installed"
            print(f"{entry.name:<{width}}  {entry.description} [{state}]")
        return 0
    if not args.model:
        raise TopicEvalError("name a model to train (topiceval train --list shows them)")
    if not args.data or not args.out:
        raise TopicEvalError("give --data H5AD and --out DIR")
    params = registry.TrainParams(
        n_topics=args.n_topics, epochs=args.epochs, seed=args.seed, layer=args.layer,
        embedding_key=args.embedding_key, label_key=args.label_key, n_top_genes=args.n_top_genes,
        options=_parse_options(args.options),
    )
    out = registry.train(args.model, args.data, args.out, params=params, overwrite=args.overwrite)
    import json

    config = json.loads((out / registry.CONFIG_FILE).read_text())
    data = config["data"]
    print(f"{config['name']}: {config['outputs']['n_topics']} topics x {data['n_cells']} cells x "
          f"{data['n_genes']} genes, trained in {config['timings']['fit_s']:.1f} s")
    print(f"wrote {out}/ ({', '.join(config['files'])})")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from topiceval.evaluate import evaluate
    from topiceval.gene_sets import load
    from topiceval.io import read_labels, read_outputs

    if args.example:
        example = EXAMPLES[args.example]
        args.topic_gene = args.topic_gene or str(example.topic_gene)
        args.cell_topic = args.cell_topic or str(example.cell_topic)
        args.labels = args.labels or str(example.labels)
        args.gene_sets = args.gene_sets or example.gene_sets
        args.name = args.name or example.name
    if not args.topic_gene:
        raise TopicEvalError("give --topic-gene (or --example NAME)")
    outputs = read_outputs(
        args.topic_gene,
        gene_names=args.genes,
        cell_topic=args.cell_topic,
        cell_embedding=args.cell_embedding,
        name=args.name,
    )
    labels = read_labels(args.labels) if args.labels else None
    gene_sets = load(args.gene_sets, case=args.gene_set_case) if args.gene_sets else None
    result = evaluate(
        outputs,
        gene_sets=gene_sets,
        labels=labels,
        metrics=args.metrics,
        top_n=args.top_n,
        tc_zero_cooccurrence=args.tc_zero_cooccurrence,
        td_method=args.td_method,
        seed=args.seed,
        ora_background=args.ora_background,
        ora_bh_scope=args.ora_bh_scope,
        ora_alpha=args.alpha,
        ora_min_size=args.ora_min_size,
        ora_max_size=args.ora_max_size,
        gsea_engine=args.gsea_engine,
        gsea_n_perm=args.n_perm,
        gsea_fdr=args.gsea_fdr,
        gsea_rank_by=args.gsea_rank_by,
        gsea_min_size=args.gsea_min_size,
        gsea_max_size=args.gsea_max_size,
        gsea_device=args.gsea_device,
        n_jobs=args.n_jobs,
        cluster_method=args.cluster_method,
        cluster_n_neighbors=args.cluster_n_neighbors,
        cluster_knn=args.cluster_knn,
        cluster_weighted={"auto": None, "yes": True, "no": False}[args.cluster_weighted],
        **({} if args.cluster_resolutions is None else {"cluster_resolutions": args.cluster_resolutions}),
    )
    if args.details:
        written = result.write_details(args.details)
        if not written:
            warnings.warn("--details: no metric with a detail table was asked for (--metrics ora,gsea)", stacklevel=1)
        for path in written:
            print(f"wrote {path}", file=sys.stderr if not args.out else sys.stdout)
    if args.out:
        result.to_json(args.out)
        print(_summary(result))
        print(f"wrote {args.out}")
    else:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from pathlib import Path

    from topiceval.leaderboard import config as lconfig
    from topiceval.leaderboard import report, runner

    config = lconfig.load_config(args.config)
    if args.scheduler:
        config = config.replace(scheduler=args.scheduler)
    out = Path(args.out) if args.out else (config.out or Path(args.config).resolve().parent)
    if args.report_only:
        results = runner.Results.read(out)
    else:
        results = runner.run(config, cache=args.cache, log=out / runner.LOG_FILE, backend=args.backend,
                             n_jobs=args.n_jobs, progress=not args.no_progress, refresh=args.refresh)
    paths = report.write_report(results, out)
    print(report.leaderboard_text(results))
    cells = results.cells
    if not cells.empty:
        counts = cells["status"].value_counts()
        print(f"\ncells: {int(counts.get('done', 0))} done, {int(counts.get('skipped', 0))} skipped, "
              f"{int(counts.get('failed', 0))} failed (reasons in {paths['markdown'].name})")
    if args.baseline_out:
        from topiceval.leaderboard.regress import make_baseline

        make_baseline(results).write(args.baseline_out)
        print(f"wrote {args.baseline_out}")
    print(f"wrote {paths['html']} and {paths['markdown']}")
    failed = int((cells["status"] == "failed").sum()) if not cells.empty else 0
    return 1 if failed else 0


def _cmd_regress(args: argparse.Namespace) -> int:
    from topiceval.leaderboard import regress

    tolerances = regress.parse_tolerance_pairs(args.rtol, args.atol)
    if args.write_baseline:
        regress.make_baseline(args.current, tolerances=tolerances).write(args.baseline)
        print(f"wrote {args.baseline}")
        return 0
    comparison = regress.compare(args.baseline, args.current, tolerances=tolerances or None)
    table = comparison.diff_table(show_all=args.all)
    if table:
        print(table)
    print(comparison.summary())
    return comparison.exit_code


def _cmd_demo(args: argparse.Namespace) -> int:
    from topiceval.leaderboard.demo import run_demo

    outcome = run_demo(args.out, models=args.models, quick=args.quick, n_jobs=args.n_jobs, cache=args.cache,
                       progress=not args.no_progress)
    print(outcome["table"])
    cells = outcome["results"].cells
    for row in cells[cells["status"] != "done"].itertuples():
        print(f"{row.model} on {row.dataset} (seed {row.seed}) {row.status}: {row.reason}")
    print(f"\nwrote {outcome['report']['html']} ({outcome['wall_s']:.0f} s)")
    return 1 if (cells["status"] == "failed").any() else 0


def _summary(result) -> str:  # noqa: ANN001 - Evaluation, imported lazily
    model = result.config["model"]
    lines = [f"{model['name']}: {model['n_topics']} topics x {model['n_genes']} genes"
             + (f", {model['n_cells']} cells" if model["n_cells"] else "")]
    gene_sets = result.config.get("gene_sets")
    if gene_sets:
        coverage = result.config["coverage"]
        lines.append(
            f"gene sets: {gene_sets['source']} ({gene_sets['n_sets']} sets), "
            f"{coverage['n_covered']}/{coverage['n_genes']} model genes covered"
        )
    width = max(len(k) for k in result.scores.index)
    lines += [f"  {key:<{width}}  {value:.4f}" for key, value in result.scores.items()]
    return "\n".join(lines)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"topiceval: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(os.environ.get("TOPICEVAL_DEBUG"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            if not debug:
                warnings.showwarning = _show_warning  # restored when the block ends
            return int(args.func(args) or 0)
    except (TopicEvalError, OSError) as exc:
        if debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"topiceval: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("topiceval: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
