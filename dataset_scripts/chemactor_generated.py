"""``ChemActorGenerated``: the output directory of the generation stage as one record-schema dataset.

The directory holds records as JSONL shards (``*.jsonl``, ``*.jsonl.gz``) and/or parquet files, at any
depth, read in sorted path order. Provenance travels in ``meta`` (generator, prompt version, endpoint,
cross-check verdicts, divergence scores); a top-level field outside the schema is moved into ``meta``
rather than lost. All rows go to one ``train`` split; each keeps its own ``split`` column.

    builder = ChemActorGenerated(data_dir="outputs/generation")
    builder.download_and_prepare(); dataset = builder.as_dataset()["train"]

or ``chemactor.data.load_generated("outputs/generation")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import datasets
import pyarrow.parquet as pq

from chemactor.data import RECORD_FEATURES, RECORD_FIELDS, RecordError, iter_jsonl, update_meta, validate_record
from dataset_scripts._drops import RowDrops

PATTERNS: tuple[str, ...] = ("*.jsonl", "*.jsonl.gz", "*.parquet")


@dataclass
class GeneratedConfig(datasets.BuilderConfig):
    """``skip_bad_rows`` drops (and counts by reason in ``builder.dropped``) a bad row instead of raising."""

    skip_bad_rows: bool = False


class ChemActorGenerated(datasets.GeneratorBasedBuilder):
    """Generated records (see the module docstring); ``data_dir`` is the generation output directory."""

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
        self.dropped.clear()
        if not self.config.data_dir:
            raise FileNotFoundError("ChemActorGenerated needs data_dir: the generation output directory")
        root = Path(self.config.data_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"generation output directory not found: {root}")
        files = sorted({path for pattern in PATTERNS for path in root.rglob(pattern)})
        if not files:
            raise FileNotFoundError(f"no {', '.join(PATTERNS)} files under {root}")
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"files": files})]

    def _generate_examples(self, files: list[Path]) -> Iterator[tuple[str, dict[str, str]]]:
        for path in files:
            rows = _parquet_rows(path) if path.suffix == ".parquet" else _jsonl_rows(path, self.dropped.reject)
            for where, row in rows:
                try:
                    yield where, _as_record(row)
                except RecordError as exc:
                    self.dropped.reject(where, exc)


def _jsonl_rows(path: Path, on_error: Callable[[str, str], None]) -> Iterator[tuple[str, dict[str, Any]]]:
    for line_no, row in iter_jsonl(path, on_error=on_error):
        yield f"{path}:{line_no}", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    index = 0
    for batch in pq.ParquetFile(path).iter_batches():
        for row in batch.to_pylist():
            index += 1
            yield f"{path}:row {index}", row


def _as_record(row: dict[str, Any]) -> dict[str, str]:
    """The schema fields of ``row``, any other top-level field moved into ``meta`` so provenance survives."""
    record = {name: row[name] for name in RECORD_FIELDS if name in row}
    validate_record(record)
    extra = {name: value for name, value in row.items() if name not in RECORD_FIELDS}
    return update_meta(record, **extra) if extra else record
