"""``ChemActorGenerated``: files of records (the generation stage's output, any JSONL or parquet) as one dataset.

``data_dir`` is a generation output directory holding JSONL shards (``*.jsonl``, ``*.jsonl.gz``) and/or
parquet files at any depth (read in sorted path order), one such file, or a ``save_to_disk`` folder; the
Open Reaction Database's own ``Dataset`` files (``*.pb``, ``*.pb.gz``, :mod:`chemactor.builders.ord_files`)
and target molecules (``*.smi``, :mod:`chemactor.builders.targets`) are read as records too.
Provenance travels in ``meta`` (generator, prompt version, endpoint, cross-check verdicts, divergence
scores); a top-level field outside the schema is moved into ``meta`` rather than lost. All rows go to one
``train`` split; each keeps its own ``split`` column. Ids must be unique.

    builder = ChemActorGenerated(data_dir="outputs/generation")
    builder.download_and_prepare(); dataset = builder.as_dataset()["train"]

or ``chemactor.builders.read_records("outputs/generation")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import datasets
import pyarrow
import pyarrow.parquet as pq

from chemactor.builders.drops import RowDrops
from chemactor.builders.ord_files import ORD_PATTERNS, ORD_SUFFIXES, is_ord_file, ord_rows
from chemactor.builders.targets import SMI_PATTERNS, SMI_SUFFIXES, is_smi_file, target_rows
from chemactor.data import RECORD_FEATURES, RECORD_FIELDS, RecordError, iter_jsonl, update_meta, validate_record

PATTERNS: tuple[str, ...] = ("*.jsonl", "*.jsonl.gz", "*.parquet", *ORD_PATTERNS, *SMI_PATTERNS)
SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".parquet", *ORD_SUFFIXES, *SMI_SUFFIXES)


@dataclass
class GeneratedConfig(datasets.BuilderConfig):
    """``skip_bad_rows`` drops (and counts by reason in ``builder.dropped``) a bad row instead of raising."""

    skip_bad_rows: bool = False


class ChemActorGenerated(datasets.GeneratorBasedBuilder):
    """Generated records (see the module docstring); ``data_dir`` is the folder or file to read."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = GeneratedConfig
    BUILDER_CONFIGS: ClassVar[list[GeneratedConfig]] = [GeneratedConfig(name="default", version=VERSION)]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = RowDrops(self.config.skip_bad_rows)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Samples written by the ChemActor generation stage, with per-row provenance in meta.",
            features=RECORD_FEATURES,
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        self.dropped.reset()
        if not self.config.data_dir:
            raise RecordError("ChemActorGenerated needs data_dir: a generation output folder or a file of records")
        return [
            datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"files": record_files(self.config.data_dir)})
        ]

    def _generate_examples(self, files: list[Path]) -> Iterator[tuple[str, dict[str, str]]]:
        yield from iter_records(files, self.dropped)


def iter_records(files: list[Path], dropped: RowDrops) -> Iterator[tuple[str, dict[str, str]]]:
    """``(where, record)`` for every good row of ``files`` (from :func:`record_files`), in order.

    A bad row or a repeated id goes to ``dropped`` (which raises, or counts it when skipping bad rows).
    """
    for path in files:
        for where, row in _rows(path, dropped):
            try:
                record = _as_record(row)
            except RecordError as exc:
                dropped.reject(where, exc)
                continue
            if dropped.is_new(record["id"], where):
                yield where, record


def records_table(files: list[Path], dropped: RowDrops, batch_size: int = 10_000) -> pyarrow.Table:
    """The good rows of ``files`` as one Arrow table of the record columns (see :func:`iter_records`).

    The rows the builder yields, without its per-example encoding (several times slower on plain string
    columns), so reading a large pool costs its validation and little else.
    """
    schema = RECORD_FEATURES.arrow_schema
    batches, columns = [], {name: [] for name in RECORD_FIELDS}
    for _, record in iter_records(files, dropped):
        for name in RECORD_FIELDS:
            columns[name].append(record[name])
        if len(columns["id"]) >= batch_size:
            batches.append(pyarrow.table(columns, schema=schema))
            columns = {name: [] for name in RECORD_FIELDS}
    batches.append(pyarrow.table(columns, schema=schema))
    return pyarrow.concat_tables(batches)


def is_saved_dataset(path: Path) -> bool:
    """Whether ``path`` is a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def record_files(spec: str | Path) -> list[Path]:
    """The files (or the one ``save_to_disk`` folder) that hold the records of ``spec``, a folder or a file."""
    root = Path(spec)
    if root.is_file():
        if not root.name.endswith(SUFFIXES):
            raise RecordError(f"{root}: unsupported file type; records are read from {', '.join(SUFFIXES)}")
        return [root]
    if not root.is_dir():
        raise RecordError(f"{root}: no such file or folder")
    if is_saved_dataset(root):
        return [root]
    files = sorted({path for pattern in PATTERNS for path in root.rglob(pattern) if path.is_file()})
    if not files:
        raise RecordError(f"{root}: no {', '.join(PATTERNS)} files in this folder")
    return files


def _rows(path: Path, drops: RowDrops) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.is_dir():
        return _saved_rows(path)
    if path.suffix == ".parquet":
        return _parquet_rows(path)
    if is_ord_file(path):
        return ord_rows(path, drops)
    if is_smi_file(path):
        return target_rows(path)
    return ((f"{path}:{line_no}", row) for line_no, row in iter_jsonl(path, on_error=drops.reject))


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    index = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches():
            for row in batch.to_pylist():
                index += 1
                yield f"{path}:row {index}", row
    except (pyarrow.ArrowException, OSError) as exc:
        raise RecordError(f"{path}: unreadable parquet file after row {index}: {exc}") from exc


def _saved_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        loaded = datasets.load_from_disk(str(path))
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise RecordError(f"{path}: unreadable save_to_disk folder: {exc}") from exc
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, dataset in parts:
        for index, row in enumerate(dataset, start=1):
            yield f"{path}{'[' + split + ']' if split else ''}:row {index}", row


def _as_record(row: dict[str, Any]) -> dict[str, str]:
    """The schema fields of ``row``, any other top-level field moved into ``meta`` so provenance survives."""
    record = {name: row[name] for name in RECORD_FIELDS if name in row}
    validate_record(record)
    extra = {name: value for name, value in row.items() if name not in RECORD_FIELDS}
    try:
        return update_meta(record, **extra) if extra else record
    except (TypeError, ValueError) as exc:  # a parquet column of bytes or timestamps has no JSON form
        raise RecordError(f"extra field(s) {', '.join(extra)} cannot be kept in 'meta': {exc}") from None
