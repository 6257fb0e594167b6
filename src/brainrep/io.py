"""Small I/O helpers shared by the stages: JSON sidecars with provenance, feature tables."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pandas as pd

if TYPE_CHECKING:
    from brainrep.storage import RowStore

PROVENANCE_PACKAGES = ("brainrep", "numpy", "scipy", "pandas", "scikit-learn", "mne", "mne-bids",
                       "nilearn", "nibabel", "torch")


@cache
def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the numbers (read once per
    process: batch jobs write many sidecars)."""
    versions = {"python": platform.python_version()}
    for package in PROVENANCE_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(paths: list[str]) -> pd.DataFrame:
    """Size (bytes) and SHA-256 of every file in ``paths`` (a BrainVision or EEGLAB recording's
    companion files included), a row each."""
    companions = {".vhdr": (".vmrk", ".eeg"), ".set": (".fdt",)}
    files = []
    for path in map(Path, paths):
        files.append(path)
        files += [c for suffix in companions.get(path.suffix, ())
                  if (c := path.with_suffix(suffix)).exists()]
    return pd.DataFrame([{"path": str(f), "bytes": f.stat().st_size, "sha256": sha256(f)}
                         for f in dict.fromkeys(files)])


def check_sha256(path: str | Path, expected: str | None, key: str) -> None:
    """Refuse ``path`` when ``expected`` is set and differs from its SHA-256 (``key`` names
    the config entry that holds the expected value)."""
    if expected and (actual := sha256(path)) != expected.lower():
        raise ValueError(f"{path}: SHA-256 {actual} differs from {key} = {expected}. The file "
                         "is not the one you pinned: fetch it again from its source, or update "
                         f"{key} if you changed it on purpose.")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block ends
    without error, removed otherwise: a kill or a crash never leaves a half-written store."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{''.join(path.suffixes)}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def sidecar_path(path: str | Path) -> Path:
    """``x_epo.fif`` -> ``x_epo.json``; ``x.nii.gz`` -> ``x.json``."""
    path = Path(path)
    name = path.name.split(".", 1)[0]
    return path.with_name(f"{name}.json")


def write_sidecar(path: str | Path, sources: list[str], **fields) -> Path:
    """Write the JSON sidecar of an output: its sources, software versions and any fields."""
    content = {"Sources": [str(s) for s in sources], **fields,
               "SoftwareVersions": dict(software_versions())}
    out = sidecar_path(path)
    out.write_text(json.dumps(content, indent=2, default=_jsonable) + "\n")
    return out


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


#: columns of a Parquet table decoded at once: a 1,000 x 20,100 table read whole takes about
#: 1 GB beside its 160 MB of values (pyarrow's buffers per column), in chunks 270 MB
PARQUET_COLUMNS_PER_READ = 1000


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a TSV or Parquet table by extension; a wide Parquet table (no stored index) is
    decoded :data:`PARQUET_COLUMNS_PER_READ` columns at a time."""
    path = str(path)
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        if (len(names) <= PARQUET_COLUMNS_PER_READ
                or (parquet.schema_arrow.pandas_metadata or {}).get("index_columns")):
            return pd.read_parquet(path)
        return pd.concat([parquet.read(columns=names[i:i + PARQUET_COLUMNS_PER_READ])
                          .to_pandas() for i in range(0, len(names), PARQUET_COLUMNS_PER_READ)],
                         axis=1)
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


#: rows of a TSV feature table parsed at once: pandas' parser holds about 6 times a wide
#: table's values while it reads it whole (1.1 GB for 1,000 x 19,900 edges), a chunk's worth
#: when it reads it in chunks
TSV_ROWS_PER_READ = 256


def read_features(path: str | Path) -> pd.DataFrame:
    """A participant-level feature table: ``participant_id`` plus its numeric columns only.

    A TSV table whose columns besides ``participant_id`` are all floating point (edges, band
    power, covariances) is parsed :data:`TSV_ROWS_PER_READ` rows at a time into one float64
    block, so reading it holds little more than its values; so is a Parquet table of that
    shape, :data:`PARQUET_COLUMNS_PER_READ` columns at a time (the harness's design matrix is
    then a view of the table, not a copy)."""
    table = (_read_float_parquet if str(path).endswith(".parquet") else _read_float_tsv)(path)
    if table is not None:
        return table
    table = read_table(path)
    keep = ["participant_id", *(c for c in table.select_dtypes("number").columns
                                if c != "participant_id")]
    return table if list(table.columns) == keep else table[keep]


def _read_float_parquet(path: str | Path) -> pd.DataFrame | None:
    """The Parquet table at ``path`` as :func:`read_table` reads it, in one float64 block,
    when its columns are ``participant_id`` (text) and float64 ones; None otherwise."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    names = schema.names
    text = (pa.types.is_string, pa.types.is_large_string)  # pyarrow's, pandas'
    if (names[:1] != ["participant_id"] or not any(t(schema.field(0).type) for t in text)
            or len(names) < 2 or not all(pa.types.is_float64(schema.field(name).type)
                                         for name in names[1:])):
        return None
    default_index = {"kind": "range", "name": None, "start": 0, "step": 1}
    if any(not isinstance(index, dict) or {k: index.get(k) for k in default_index}
           != default_index for index in (schema.pandas_metadata or {}).get("index_columns",
                                                                          [])):
        return None  # a stored index: read_table restores it
    values = np.empty((parquet.metadata.num_rows, len(names) - 1))
    for start in range(1, len(names), PARQUET_COLUMNS_PER_READ):
        chunk = parquet.read(columns=names[start:start + PARQUET_COLUMNS_PER_READ])
        for offset, column in enumerate(chunk.columns):
            values[:, start - 1 + offset] = column.to_numpy()
    table = pd.DataFrame(values, columns=names[1:], copy=False)
    table.insert(0, "participant_id",
                 parquet.read(columns=["participant_id"]).to_pandas()["participant_id"])
    return table


def _read_float_tsv(path: str | Path) -> pd.DataFrame | None:
    """The TSV table at ``path`` as :func:`read_table` reads it, when its first column is
    ``participant_id`` (text) and every other is floating point (a chunk may parse a column
    as integers: the whole read makes it float); None otherwise."""
    chunks = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                         chunksize=TSV_ROWS_PER_READ, low_memory=False, index_col=0)
    ids, blocks = [], []
    with chunks:
        for chunk in chunks:
            # a whole read would give text ids, or a text column: so does read_table
            if (chunk.index.name != "participant_id"
                    or not pd.api.types.is_string_dtype(chunk.index.dtype)
                    or not all(pd.api.types.is_float_dtype(d) or (
                        blocks and pd.api.types.is_integer_dtype(d)) for d in chunk.dtypes)):
                return None
            blocks.append(chunk.to_numpy(dtype=float))
            ids.append(chunk.index.to_series(index=None))
    if not blocks:
        return None
    # copied block by block, each freed once copied: the pages of ``values`` that are not yet
    # written are not yet resident
    values = np.empty((sum(len(b) for b in blocks), blocks[0].shape[1]))
    start = 0
    while blocks:
        block = blocks.pop(0)
        values[start:start + len(block)] = block
        start += len(block)
    table = pd.DataFrame(values, columns=chunk.columns, copy=False)
    table.insert(0, "participant_id", pd.concat(ids, ignore_index=True))
    return table


#: participants per row group of a wide Parquet table (:func:`write_wide_parquet`): its
#: writer keeps tens of MiB of metadata per row group of 20,000 columns
PARQUET_ROWS_PER_GROUP = 1000


def write_wide_parquet(rows: RowStore, participant_ids: list[str], columns: list[str],
                       path: str | Path) -> None:
    """A Parquet table of ``participant_id`` and ``columns`` from ``rows`` (one per
    participant, in ``participant_ids``' order), :data:`PARQUET_ROWS_PER_GROUP` participants
    per row group, each read from the store :data:`PARQUET_COLUMNS_PER_READ` columns at a
    time. Writing holds a row group's values about twice (as arrays,
    and in the writer), where ``DataFrame.to_parquet`` holds the whole table four times (the
    frame, its Arrow copy, the writer's buffers and pyarrow's per-column overhead)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(participant_ids) != len(rows) or len(columns) != rows.n_columns:
        raise ValueError(f"{len(participant_ids)} participant ids and {len(columns)} column "
                         f"names for {len(rows)} rows of {rows.n_columns} values")
    block = PARQUET_COLUMNS_PER_READ
    with pq.ParquetWriter(path, pa.schema([("participant_id", pa.string()),
                                           *((c, pa.float64()) for c in columns)])) as writer:
        for start in range(0, max(len(rows), 1), PARQUET_ROWS_PER_GROUP):
            group = range(start, min(start + PARQUET_ROWS_PER_GROUP, len(rows)))
            arrays = [pa.array(participant_ids[group.start:group.stop], type=pa.string())]
            for first in range(0, len(columns), block):
                values = np.asfortranarray(rows.read_block(group, first,
                                                      min(first + block, len(columns))))
                # NaN stored as null, as DataFrame.to_parquet stores it
                arrays.extend(pa.array(values[:, j], from_pandas=True)
                              for j in range(values.shape[1]))
            writer.write_table(pa.Table.from_arrays(arrays, schema=writer.schema))


def write_tsv(frame: pd.DataFrame, path: str | Path, *, index: bool = False,
              na_rep: str = "", append: bool = False) -> None:
    """``frame.to_csv(path, sep="\\t", index=index, na_rep=na_rep)``, byte for byte, 7x to 15x
    faster for the wide tables of connectivity (matrices, edges): when every label is text
    that needs no quoting and the columns are text first, then float64, each float is written
    with its shortest round-trip digits (the text of ``repr``, which pandas writes), one row
    at a time (:func:`shortest_floats`; a row with a gap or an infinity by ``repr``).
    Any other table (or a compressed path, or rows of one field) is written by pandas.
    ``append``: the rows are added to the end of ``path``, without the header line (a table
    written in chunks of rows is the whole table's file)."""
    floats = [pd.api.types.is_float_dtype(d) and d == np.float64 for d in frame.dtypes]
    n_text = floats.index(True) if True in floats else len(floats)
    labels = [*frame.columns, *(frame.index if index else []),
              *([frame.index.name] if index and frame.index.name is not None else [])]
    text = frame.iloc[:, :n_text].to_numpy(dtype=object).tolist()
    if (not all(floats[n_text:]) or (index and frame.index.nlevels > 1)
            or not str(path).endswith(".tsv") or frame.shape[1] + index < 2  # gz; one field
            or (na_rep and not _plain_text(na_rep))
            or not all(map(_plain_text, labels + [v for row in text for v in row]))):
        frame.to_csv(path, sep="\t", index=index, na_rep=na_rep, mode="a" if append else "w",
                     header=not append)
        return
    values = frame.iloc[:, n_text:].to_numpy()
    if index:
        text = [[label, *row] for label, row in zip(frame.index, text, strict=True)]
    with open(path, "a" if append else "w", encoding="utf-8", newline="") as out:
        if not append:
            out.write("\t".join([*([frame.index.name or ""] if index else []), *frame.columns])
                      + "\n")
        for head, row in zip(text, values, strict=True):
            cells = (shortest_floats(row) if np.isfinite(row).all() else
                     "\t".join(na_rep if v != v else repr(v) for v in row.tolist()))
            out.write("\t".join([*head, cells] if row.size else head) + "\n")


def shortest_floats(values: np.ndarray) -> str:
    """The finite float64 ``values`` (1-D) as ``"\\t".join(map(repr, values.tolist()))``
    writes them (shortest round-trip digits, as pandas writes them), about 7x (a row with a few
    values below 1e-4) to 16x faster: orjson writes the same digits in C. Where ``repr``
    uses exponent notation (0 < |x| < 1e-4 or |x| >= 1e16), orjson's notation differs
    (``0.00001`` for ``1e-05``, ``1e-6`` for ``1e-06``; its exponents vary by version), so
    those few values are written by ``repr``. NaN and infinities are not handled (orjson
    writes ``null``): :func:`write_tsv` sends rows holding them to ``repr``."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"one row of values expected, got shape {values.shape}")
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
    magnitude = np.abs(values)
    exponent = np.flatnonzero(((magnitude < 1e-4) & (magnitude > 0)) | (magnitude >= 1e16))
    if exponent.size:  # those cells replaced, the text between them kept
        commas = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord(","))
        starts, ends = np.r_[0, commas + 1], np.r_[commas, len(text)]
        pieces, kept_from = [], 0
        for i in exponent.tolist():
            pieces += [text[kept_from:starts[i]], repr(float(values[i])).encode("ascii")]
            kept_from = ends[i]
        text = b"".join([*pieces, text[kept_from:]])
    return text.replace(b",", b"\t").decode("ascii")


def _plain_text(value) -> bool:
    """Whether pandas writes ``value`` into a TSV as it is (text needing no quotes)."""
    return isinstance(value, str) and value != "" and not any(c in value for c in '\t"\n\r')


def feature_participants(path: str | Path) -> list[str]:
    """The ``participant_id`` column of a feature table, read without its features."""
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=["participant_id"])["participant_id"].to_pylist()
    return pd.read_csv(path, sep="\t", usecols=["participant_id"], na_values=["n/a"],
                       keep_default_na=False)["participant_id"].tolist()


def table_shape(path: str | Path) -> tuple[int, int]:
    """(rows, columns) of a feature table without reading its values: from the Parquet
    footer, or a TSV's header and line count (about 0.1 s per 100 MB)."""
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(path).metadata
        return metadata.num_rows, metadata.num_columns
    with open(path, "rb") as table:
        columns = table.readline().count(b"\t") + 1
        rows, last = 0, b"\n"
        while block := table.read(1 << 20):
            rows += block.count(b"\n")
            last = block[-1:]
    return rows + (last != b"\n"), columns


def with_motion(participants: pd.DataFrame, fmri_qc: list[str]) -> pd.DataFrame:
    """``participants`` plus ``mean_fd_mm``: each participant's mean framewise displacement
    (mm) over the fMRI runs that entered the analysis, from ``group/fmri/qc.tsv`` (a list of
    zero or one path). Unchanged without fMRI or without a motion estimate (parcellated
    inputs)."""
    if not fmri_qc:
        return participants
    qc = read_table(fmri_qc[0])
    if "mean_fd_mm" not in qc:
        return participants
    kept = qc[qc["excluded"].astype(str) != "True"]
    motion = kept.groupby("recording")["mean_fd_mm"].mean()
    return participants.assign(mean_fd_mm=participants["participant_id"].map(motion))


def collect_qc(outputs: list[str], keys: list[str]) -> pd.DataFrame:
    """One row per recording from the ``qc`` record of each output's JSON sidecar."""
    rows = []
    for key, output in zip(keys, outputs, strict=True):
        qc = json.loads(sidecar_path(output).read_text())["qc"]
        rows.append({"recording": key, **{k: (";".join(map(str, v)) if isinstance(v, list)
                                              else v) for k, v in qc.items()}})
    return pd.DataFrame(rows)


def stop_with_parent() -> None:
    """On Linux, have the kernel send this process SIGTERM when the process that started it
    (Snakemake) dies, even by ``kill -9``, so that no orphaned job goes on writing outputs
    while the user reruns or unlocks; exits at once when that parent is already gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()  # Snakemake (PID 1 itself in some containers)
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        sys.exit("the Snakemake process that started this job is gone")


def log_to_file(path: str) -> None:
    """Send this job's warnings, logging and stderr to its Snakemake log file, and stop
    the job with its Snakemake process (:func:`stop_with_parent`)."""
    stop_with_parent()
    stream = open(path, "w", buffering=1)  # by line, as what writes to fd 2; kept open
    sys.stderr = stream
    os.dup2(stream.fileno(), 2)  # and what writes to file descriptor 2: libraries, workers
    logging.basicConfig(stream=stream, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s", force=True)
    logging.captureWarnings(True)
