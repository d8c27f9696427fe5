"""Readers for matrices, gene lists and labels, the h5ad layout, and atomic writes.

File layouts understood by :func:`read_outputs` and ``topiceval score``:

* **Matrix files** (topic-gene ``K x V``, cell-topic ``n x K``): ``.npy`` (never pickled), or
  delimited text ``.csv`` / ``.tsv`` / ``.txt`` (optionally ``.gz``). A text file may have a header
  row (for a topic-gene matrix: the gene names) and a first index column (row names); both are
  detected. A pandas ``to_csv`` file with an empty corner cell and numeric column labels
  (``,0,1,2``) counts as having no gene names.
* **Gene lists**: a JSON list of strings, or one symbol per line.
* **Labels**: a JSON list, one label per line, ``table.csv:column`` (also ``.tsv``) or
  ``file.h5ad:obs_column``.
* **h5ad** (AnnData, cells x genes): ``varm["topic_gene"]`` holds the topic-gene matrix as
  ``(n_genes, n_topics)`` (scverse orientation, genes are ``var_names``), or ``uns["topic_gene"]``
  holds it as ``(n_topics, n_genes)``; ``obsm["X_topic"]`` the cell-topic matrix,
  ``obsm["X_topic_embedding"]`` an optional cell embedding, ``uns["topiceval"]["name"]`` the model
  name. :func:`write_outputs_h5ad` writes exactly this layout.
* **Large cell matrices**: :func:`read_cell_matrix` maps a ``.npy`` or an h5ad's ``obsm`` entry
  into memory without reading it (``numpy.memmap``); :func:`read_obs` reads an h5ad's ``obs``
  alone (labels without the matrices).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from topiceval._utils import PathLike, as_path, preview
from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

__all__ = [
    "H5AD_KEYS",
    "atomic_path",
    "atomic_write",
    "current_umask",
    "follow_umask",
    "make_temp_dir",
    "read_matrix",
    "read_gene_names",
    "read_labels",
    "read_label_column",
    "read_cell_matrix",
    "read_obs",
    "read_var_names",
    "read_outputs",
    "write_outputs_h5ad",
    "write_json",
]

#: Keys of the h5ad layout (see the module docstring).
H5AD_KEYS = {
    "topic_gene_varm": "topic_gene",
    "topic_gene_uns": "topic_gene",
    "cell_topic": "X_topic",
    "cell_embedding": "X_topic_embedding",
    "uns": "topiceval",
}

_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- atomic writes
def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux exposes it in ``/proc/self/status``; elsewhere it is read by setting ``0o077`` (the
    safest value, should another thread create a file meanwhile) and restoring it at once.
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def follow_umask(path: PathLike, directory: bool | None = None) -> None:
    """Give ``path`` the mode a plain ``open`` / ``mkdir`` would have (``0o666`` or ``0o777``
    less the umask).

    :func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` create owner-only entries (``0600`` /
    ``0700``); a file or folder written through one and renamed into place must get the user's
    usual mode, or colleagues sharing a server cannot read it.
    """
    target = Path(path)
    if directory is None:
        directory = target.is_dir()
    os.chmod(target, (0o777 if directory else 0o666) & ~current_umask())


def make_temp_dir(prefix: str, dir: PathLike) -> Path:  # noqa: A002 - tempfile's name
    """:func:`tempfile.mkdtemp` whose folder follows the umask (see :func:`follow_umask`)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    follow_umask(path, directory=True)
    return path


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it over ``path`` only on success.

    For writers that take a file name (``AnnData.write_h5ad``, ``np.save``). A crash or exception
    inside the ``with`` block leaves ``path`` untouched (absent or as it was) and removes the
    temporary file. The file placed at ``path`` has the mode of a normally created file
    (``0o666`` less the umask), not ``mkstemp``'s ``0600``.
    """
    target = as_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp_name)
        follow_umask(tmp_name, directory=False)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; it replaces ``path`` only on success."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_json(obj: Any, path: PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN is written as ``null``."""
    text = json.dumps(_json_safe(obj), indent=2, allow_nan=False)
    with atomic_write(path) as handle:
        handle.write(text + "\n")


def _json_safe(obj: Any) -> Any:
    """Recursively convert numpy / pandas values to JSON types, NaN and inf to ``None``."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_json_safe(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- text helpers
def _open_text(path: Path) -> IO[str]:
    """Open plain or gzip text (detected by magic bytes, not by name)."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _check_file(path: PathLike, what: str) -> Path:
    p = as_path(path)
    if not p.exists():
        raise InputError(f"{what} file not found: {p}")
    if p.is_dir():
        raise InputError(f"{what} path is a folder, not a file: {p}")
    return p


def _strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def _delimiter(path: Path, first_line: str) -> str:
    suffix = Path(_strip_gz(path.name)).suffix.lower()
    if suffix in {".tsv", ".tab"}:
        return "\t"
    if suffix == ".csv":
        return ","
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    return r"\s+"


def _is_number(token: str) -> bool:
    token = token.strip().strip('"')
    if not token:
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def _split(line: str, delimiter: str) -> list[str]:
    if delimiter == r"\s+":
        return line.split()
    return [tok.strip().strip('"') for tok in line.rstrip("\r\n").split(delimiter)]


# --------------------------------------------------------------------------- matrices
def read_matrix(path: PathLike, what: str = "matrix") -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """Read a numeric matrix from ``.npy`` or delimited text.

    Parameters
    ----------
    path
        ``.npy`` file (loaded with ``allow_pickle=False``) or ``.csv`` / ``.tsv`` / ``.txt``,
        plain or gzip-compressed.
    what
        What the matrix is, for error messages.

    Returns
    -------
    values
        ``float64`` array, 2-d.
    row_names
        Names from a first index column, or ``None``.
    column_names
        Names from a header row, or ``None`` (also when the header is just ``0, 1, 2, ...``).
    """
    p = _check_file(path, what)
    if _strip_gz(p.name).lower().endswith(".npy"):
        try:
            with _open_binary(p) as handle:
                values = np.load(handle, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"cannot read {what} {p}: {exc}") from None
        if values.ndim != 2:
            raise InputError(f"{what} {p} must be 2-d, got shape {values.shape}")
        if not np.issubdtype(values.dtype, np.number):
            raise InputError(f"{what} {p} must be numeric, got dtype {values.dtype}")
        return values.astype(np.float64, copy=False), None, None

    with _open_text(p) as handle:
        lines = [handle.readline(), handle.readline()]
    if not lines[0].strip():
        raise InputError(f"{what} file {p} is empty")
    delimiter = _delimiter(p, lines[0])
    first = _split(lines[0], delimiter)
    second = _split(lines[1], delimiter) if lines[1].strip() else []
    has_header = not all(_is_number(tok) for tok in first)
    has_index = bool(first) and (
        first[0] == "" or (bool(second) and not _is_number(second[0]))
    )
    try:
        frame = pd.read_csv(
            p,
            sep=delimiter,
            header=0 if has_header else None,
            index_col=0 if has_index else None,
            compression=_compression(p),
            engine="c" if delimiter != r"\s+" else "python",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot parse {what} {p}: {exc}") from None
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        raise InputError(f"{what} {p} has non-numeric columns: {preview(bad)}") from None
    row_names = [str(i) for i in frame.index] if has_index else None
    column_names = None
    if has_header:
        # Names straight from the header line: pandas would rename duplicates ("A", "A.1"), and
        # duplicates must reach the gene-name validation as they are.
        columns = first[1:] if has_index else first
        if len(columns) != values.shape[1]:
            raise InputError(
                f"{what} {p}: the header has {len(columns)} names for {values.shape[1]} columns"
            )
        if not all(_is_number(c) for c in columns):
            column_names = columns
    return values, row_names, column_names


def _compression(path: Path) -> str | None:
    with open(path, "rb") as probe:
        return "gzip" if probe.read(2) == _GZIP_MAGIC else None


@contextlib.contextmanager
def _open_binary(path: Path) -> Iterator[IO[bytes]]:
    if _compression(path) == "gzip":
        with gzip.open(path, "rb") as handle:
            yield io.BytesIO(handle.read())
    else:
        with open(path, "rb") as handle:
            yield handle


# --------------------------------------------------------------------------- lists
def _read_list(path: PathLike, what: str) -> list[str]:
    p = _check_file(path, what)
    with _open_text(p) as handle:
        text = handle.read()
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{what} file {p} is empty")
    if stripped.startswith("["):
        try:
            values = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"{what} file {p} is not valid JSON: {exc}") from None
        if not isinstance(values, list) or any(isinstance(v, list | dict) for v in values):
            raise InputError(f"{what} file {p} must hold a flat JSON list")
        return values
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if blank:
        raise InputError(f"{what} file {p} has blank line(s) at line {preview(blank)}")
    return [line.strip() for line in lines]


def read_gene_names(path: PathLike) -> list[str]:
    """Read gene symbols: a JSON list, or one symbol per line."""
    genes = _read_list(path, "gene names")
    bad = [g for g in genes if not isinstance(g, str)]
    if bad:
        raise InputError(f"gene names must be strings, got {preview(repr(b) for b in bad)}")
    return genes


def read_labels(spec: PathLike) -> np.ndarray:
    """Read cell labels.

    ``spec`` is a JSON list file, a file with one label per line, ``table.csv:column`` (or
    ``.tsv``) or ``file.h5ad:obs_column``. A path that exists as given is read whole; otherwise
    the text after the last ``:`` names the column.
    """
    text = os.fspath(spec)
    p = as_path(text)
    if not p.exists() and ":" in text:
        file_part, column = text.rsplit(":", 1)
        return read_label_column(file_part, column)
    p = _check_file(p, "labels")
    if _strip_gz(p.name).lower().endswith((".csv", ".tsv", ".h5ad")):
        raise InputError(
            f"labels file {p} is a table: name the column as {p}:COLUMN"
        )
    values = _read_list(p, "labels")
    return np.asarray([None if v is None else str(v) for v in values], dtype=object)


def read_label_column(path: PathLike, column: str) -> np.ndarray:
    """Labels from column ``column`` of an h5ad's ``obs`` (read alone) or of a CSV/TSV table;
    missing values become ``None``."""
    path = _check_file(path, "labels")
    if path.name.lower().endswith(".h5ad"):
        try:
            obs = read_obs(path)  # obs alone: a backed AnnData would still load obsm / obsp
        except InputError as exc:
            raise InputError(
                f"labels: {path} is not a readable h5ad file (--labels FILE.h5ad:COLUMN reads an "
                f"AnnData's obs column; for a table use FILE.csv:COLUMN): {exc}"
            ) from None
        columns = list(obs.columns)
        if column not in columns:
            raise InputError(
                f"column {column!r} is not in {path} obs; its columns are: {preview(columns, 30)}"
            )
        series = obs[column]
    else:
        sep = "\t" if Path(_strip_gz(path.name)).suffix.lower() in {".tsv", ".tab"} else ","
        try:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=True)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"cannot parse labels table {path}: {exc}") from None
        if column not in frame.columns:
            raise InputError(
                f"column {column!r} is not in {path}; its columns are: {preview(frame.columns, 30)}"
            )
        series = frame[column]
    return np.asarray([None if pd.isna(v) else str(v) for v in series], dtype=object)


# --------------------------------------------------------------------------- outputs
def read_outputs(
    topic_gene: PathLike | None = None,
    *,
    gene_names: PathLike | list[str] | None = None,
    cell_topic: PathLike | None = None,
    cell_embedding: PathLike | None = None,
    name: str | None = None,
) -> TopicOutputs:
    """Build :class:`TopicOutputs` from files.

    Parameters
    ----------
    topic_gene
        ``.h5ad`` in the documented layout (``DIR/outputs.h5ad`` of ``topiceval train``; its ``obs``
        comes along, so that ``evaluate(outputs, labels="cell_type")`` finds the labels; the other
        files are optional overrides), or a matrix file ``(n_topics, n_genes)``. ``None`` scores
        cells alone: give ``cell_embedding`` (or ``cell_topic``).
    gene_names
        Gene list file or list; optional when the topic-gene file has a header of gene names.
    cell_topic, cell_embedding
        Matrix files ``(n_cells, n_topics)`` and ``(n_cells, n_dims)``.
    name
        Model name; defaults to the topic-gene file's stem (or the embedding's).

    Examples
    --------
    >>> outputs = te.read_outputs("run/outputs.h5ad")  # doctest: +SKIP
    >>> te.evaluate(outputs, gene_sets="reactome", labels="cell_type")  # doctest: +SKIP
    """
    obs = None
    if topic_gene is None:
        if cell_topic is None and cell_embedding is None:
            raise InputError("give a topic-gene matrix, a cell-topic matrix or a cell embedding")
        if gene_names is not None:
            raise InputError("gene names belong to a topic-gene matrix, and none was given")
        first = as_path(cell_embedding if cell_embedding is not None else cell_topic)
        beta = genes = theta = embedding = None
        default_name = _strip_gz(first.name).rsplit(".", 1)[0]
        source = {"cell_file": str(first)}
    else:
        tg_path = as_path(topic_gene)
        source = {"topic_gene_file": str(tg_path)}
        if _strip_gz(tg_path.name).lower().endswith(".h5ad"):
            outputs = read_outputs_h5ad(tg_path)
            beta, genes = outputs.topic_gene, list(outputs.gene_names)
            theta, embedding, obs = outputs.cell_topic, outputs.cell_embedding, outputs.obs
            default_name = outputs.name
        else:
            beta, _, header = read_matrix(tg_path, "topic-gene matrix")
            genes, theta, embedding = header, None, None
            default_name = _strip_gz(tg_path.name).rsplit(".", 1)[0]
        if gene_names is not None:
            listed = read_gene_names(gene_names) if isinstance(gene_names, str | os.PathLike) else list(gene_names)
            if genes is not None and list(genes) != list(listed):
                raise InputError(
                    "the gene names given differ from the topic-gene file's header; give one of them"
                )
            genes = listed
        if genes is None:
            raise InputError(
                f"the topic-gene file {tg_path} has no header of gene names: give the gene names "
                "(--genes FILE)"
            )
    if cell_topic is not None:
        theta = read_matrix(cell_topic, "cell-topic matrix")[0]
    if cell_embedding is not None:
        embedding = read_matrix(cell_embedding, "cell embedding")[0]
    return TopicOutputs(
        topic_gene=beta,
        gene_names=None if genes is None else np.asarray(genes, dtype=object),
        cell_topic=theta,
        cell_embedding=embedding,
        name=name or default_name,
        metadata=source,
        obs=obs,
    )


def read_outputs_h5ad(path: PathLike, *, require_topic_gene: bool = True) -> TopicOutputs:
    """Read :class:`TopicOutputs` (with the file's ``obs``) from an h5ad, through
    :meth:`TopicOutputs.from_anndata` (the layout of this module's docstring, or scE2TM's).

    ``require_topic_gene=False`` also reads a file of cell matrices alone (a cell embedding, as
    :func:`write_outputs_h5ad` writes for an embedding-only model)."""
    import anndata

    p = _check_file(path, "h5ad")
    try:
        adata = anndata.read_h5ad(p)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read h5ad {p}: {exc}") from None
    varm_key, uns_key = H5AD_KEYS["topic_gene_varm"], H5AD_KEYS["topic_gene_uns"]
    keys = {}
    if not require_topic_gene and not len(adata.varm) and "topic_gene" not in adata.uns:
        # cell matrices alone: name the layout's keys (from_anndata looks for a topic-gene matrix first)
        keys = {arg: H5AD_KEYS[key] for arg, key in (("cell_topic_key", "cell_topic"),
                                                     ("embedding_key", "cell_embedding"))
                if H5AD_KEYS[key] in adata.obsm}
    outputs = TopicOutputs.from_anndata(adata, name=None, **keys)
    if outputs.topic_gene is None and require_topic_gene:
        raise InputError(
            f"{p} holds no topic-gene matrix: expected varm[{varm_key!r}] (genes x topics) or "
            f"uns[{uns_key!r}] (topics x genes); varm has {preview(adata.varm.keys())}"
        )
    info = adata.uns.get(H5AD_KEYS["uns"], {})
    name = str(info.get("name", p.stem)) if isinstance(info, dict) else p.stem
    return dataclasses.replace(outputs, name=name, metadata={"topic_gene_file": str(p)})


def write_outputs_h5ad(outputs: TopicOutputs, path: PathLike, obs: pd.DataFrame | None = None) -> None:
    """Write :class:`TopicOutputs` as an h5ad in the documented layout, atomically.

    The AnnData has no expression matrix (``X`` is empty); ``obs`` may carry cell metadata
    (labels) when cell matrices are present.
    """
    import anndata

    n_cells = outputs.n_cells or 0
    var = pd.DataFrame(index=pd.Index([] if outputs.gene_names is None else outputs.gene_names, name="gene"))
    if obs is None:
        obs = pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)])
    adata = anndata.AnnData(obs=obs, var=var)
    if outputs.topic_gene is not None:  # None: a cell embedding alone (no genes)
        adata.varm[H5AD_KEYS["topic_gene_varm"]] = outputs.topic_gene.T
    if outputs.cell_topic is not None:
        adata.obsm[H5AD_KEYS["cell_topic"]] = outputs.cell_topic
    if outputs.cell_embedding is not None:
        adata.obsm[H5AD_KEYS["cell_embedding"]] = outputs.cell_embedding
    adata.uns[H5AD_KEYS["uns"]] = {"name": outputs.name}
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)


# --------------------------------------------------------------------------- large inputs
def _read_table(path: PathLike, name: str) -> pd.DataFrame:
    """The ``obs`` or ``var`` table of an h5ad alone (nothing else of the file is read)."""
    import h5py
    from anndata.io import read_elem

    p = _check_file(path, "h5ad")
    try:
        with h5py.File(p, "r") as handle:
            if name not in handle:
                raise InputError(f"{p} has no {name} table")
            return read_elem(handle[name])
    except OSError as exc:
        raise InputError(f"cannot read h5ad {p}: {exc}") from None


def read_obs(path: PathLike) -> pd.DataFrame:
    """The ``obs`` table of an h5ad alone (nothing else of the file is read)."""
    return _read_table(path, "obs")


def read_var_names(path: PathLike) -> pd.Index:
    """The ``var_names`` of an h5ad alone (nothing else of the file is read)."""
    return _read_table(path, "var").index


def read_cell_matrix(path: PathLike, key: str | None = None) -> np.ndarray:
    """A cell matrix (cell-topic matrix or embedding) read without loading it: memory-mapped.

    Parameters
    ----------
    path
        A ``.npy`` file (opened with ``numpy.load(mmap_mode="r")``, never unpickled), or an
        ``.h5ad`` whose ``obsm[key]`` is read from the file directly, as in a backed AnnData:
        a contiguous, uncompressed dataset (anndata's default for dense ``obsm``) is mapped with
        :class:`numpy.memmap` at its offset in the file; a chunked or compressed one cannot be
        mapped and is read into memory once.
    key
        ``obsm`` key for an h5ad (default: ``X_topic``, the cell-topic matrix of this module's
        layout); not used for ``.npy``.

    Returns
    -------
    numpy.ndarray
        ``(n_cells, n_dims)``, read-only; a :class:`numpy.memmap` where the file allows, so that
        pages are read as the metrics touch them and the matrix is never held twice. Scoring
        functions keep a float32 / float64 map as it is (``clustering_scores``); give float64
        where every metric should read it without a copy.

    Raises
    ------
    InputError
        A missing file or key, an object (pickled) ``.npy``, a matrix that is not 2-d.
    """
    p = _check_file(path, "cell matrix")
    name = p.name.lower()
    if name.endswith(".npy"):
        try:
            matrix = np.load(p, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"cannot map {p}: {exc} (object arrays are never unpickled)") from None
        where = str(p)
    elif name.endswith(".h5ad"):
        matrix, where = _map_obsm(p, key or H5AD_KEYS["cell_topic"])
    else:
        raise InputError(f"{p}: a memory-mapped cell matrix is read from .npy or .h5ad (obsm), not {p.suffix}")
    if matrix.ndim != 2:
        raise InputError(f"{where} must be 2-d (n_cells x n_dims), got shape {matrix.shape}")
    if not np.issubdtype(matrix.dtype, np.number) or np.issubdtype(matrix.dtype, np.complexfloating):
        raise InputError(f"{where} must be real numbers, got dtype {matrix.dtype}")
    return matrix


def _map_obsm(path: Path, key: str) -> tuple[np.ndarray, str]:
    import h5py

    where = f"{path} obsm[{key!r}]"
    with h5py.File(path, "r") as handle:
        obsm = handle.get("obsm")
        if obsm is None or key not in obsm:
            keys = list(obsm.keys()) if obsm is not None else []
            raise InputError(f"{where} not found; obsm has: {preview(keys) if keys else '(nothing)'}")
        dataset = obsm[key]
        if not isinstance(dataset, h5py.Dataset):
            raise InputError(f"{where} is not a dense array (a sparse or table obsm cannot be mapped)")
        offset = dataset.id.get_offset()
        if dataset.chunks is None and dataset.compression is None and offset is not None and dataset.size:
            return np.memmap(path, dtype=dataset.dtype, mode="r", offset=offset, shape=dataset.shape), where
        return dataset[()], where  # chunked / compressed: one read into memory
