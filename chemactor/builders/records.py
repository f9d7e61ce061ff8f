"""Loading records: the seed sources, generated data and any file of records, through one reader.

Every stage that takes records as input (generation, selection, evaluation, training) names them the
same way and reads them with :func:`read_records`: a seed source name (``paragraph2actions``,
``smiles2actions``, ``ord``, or ``examples`` for the set the package ships), a ``.jsonl``/``.jsonl.gz``/
``.parquet`` file, an Open Reaction Database ``Dataset`` file (``.pb``/``.pb.gz``), a generation output
folder, or a ``save_to_disk`` folder. The reader validates each
row against the record schema, names ``file:line`` and the field of the first bad row, and refuses
repeated ids; with ``skip_bad_rows`` such rows are dropped and counted by reason instead.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from datasets.table import InMemoryTable

from chemactor.builders.drops import RowDrops
from chemactor.builders.generated import SUFFIXES, ChemActorGenerated, record_files, records_table
from chemactor.builders.ord_files import is_ord_file
from chemactor.builders.seeds import ChemActorSeeds
from chemactor.data import (
    EXAMPLES_SOURCE,
    RECORD_FEATURES,
    RECORD_FIELDS,
    SEED_SOURCES,
    SPLITS,
    RecordError,
    text_hash,
)
from chemactor.errors import ChemActorError, InputError, closest

logger = logging.getLogger(__name__)

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # org/name, as the Hub spells repo ids


@dataclass
class DatasetBuild:
    """One source as built: its splits, the rows dropped by reason, and how long it took."""

    source: str
    dataset: datasets.DatasetDict
    dropped: dict[str, int]
    seconds: float

    def summary(self) -> dict[str, Any]:
        """Rows per split, dropped rows by reason and procedure texts shared across splits (must be 0)."""
        return {
            "rows": {split: len(rows) for split, rows in self.dataset.items()},
            "dropped": dict(sorted(self.dropped.items())),
            "cross_split_texts": cross_split_texts(self.dataset),
            "build_seconds": round(self.seconds, 2),
        }


def is_source_name(spec: str | Path) -> bool:
    """Whether ``spec`` names a seed source (or ``examples``) rather than a file or folder."""
    return str(spec) == EXAMPLES_SOURCE or str(spec) in SEED_SOURCES


def is_dataset_spec(spec: str | Path) -> bool:
    """Whether ``spec`` is for ``load_dataset`` (:func:`load_dataset_spec`): a dataset export folder (a card
    listing its configurations, as ``chemactor data build`` writes) or a Hub repo id ``org/name``, either
    optionally with ``:CONFIG``. A path that does not exist and is no repo id is neither: it is a mistake."""
    text = str(spec)
    base = text.rpartition(":")[0] if ":" in text and not Path(text).exists() else text
    if Path(base).is_dir():
        return (Path(base) / "README.md").is_file()
    return not Path(base).exists() and _REPO_ID.fullmatch(base) is not None and not base.endswith(SUFFIXES)


def load_dataset_spec(spec: str) -> datasets.DatasetDict:
    """``REPO_OR_FOLDER[:CONFIG]`` through ``datasets.load_dataset``: every split, in the record schema.

    ``REPO_OR_FOLDER`` is a local folder when one exists by that name, else a Hub dataset repo id (a
    published ChemActor dataset, e.g. ``org/chemactor-data:seeds``); without ``:CONFIG`` the default
    configuration is loaded. A spec that does not load, or whose rows are not records, raises
    :class:`~chemactor.errors.InputError` naming the spec.
    """
    path, _, config = spec.rpartition(":") if ":" in spec else (spec, "", "")
    try:
        loaded = datasets.load_dataset(path, config or None)
    except Exception as exc:  # load_dataset raises many types (missing repo or config, offline, bad files)
        raise InputError(f"load_dataset({path!r}, {config or None!r}) failed: {type(exc).__name__}: {exc}") from exc
    missing = [name for name in RECORD_FIELDS if name not in next(iter(loaded.values())).column_names]
    if missing:
        raise RecordError(f"{spec}: not ChemActor records, missing column(s) {', '.join(missing)}")
    return datasets.DatasetDict(
        {split: rows.select_columns(list(RECORD_FIELDS)).cast(RECORD_FEATURES) for split, rows in loaded.items()}
    )


def read_records(
    spec: str | Path,
    *,
    data_dir: str | Path | None = None,
    split: str | None = None,
    limit: int | None = None,
    skip_bad_rows: bool = False,
    dropped: RowDrops | None = None,
) -> datasets.Dataset:
    """The records ``spec`` names, validated, as one :class:`datasets.Dataset` (see the module docstring).

    ``split`` keeps the rows of that split only (for a seed source, that split of the build), ``limit`` the
    first ``limit`` rows after that. A bad row or a repeated id raises :class:`~chemactor.data.RecordError`
    naming ``file:line`` (or ``file:row N``) and the field; with ``skip_bad_rows`` it is dropped instead,
    counted by reason into ``dropped`` when given, and the counts are logged as one warning.
    """
    if split is not None and split not in SPLITS:
        raise InputError(f"unknown split {split!r}{closest(split, SPLITS)}; known: {', '.join(SPLITS)}")
    if is_source_name(spec) or is_dataset_spec(spec):
        build = build_seeds(str(spec), data_dir, skip_bad_rows=skip_bad_rows)
        drops, parts = build.dropped, build.dataset
        if split:
            dataset = parts[split] if split in parts else parts[next(iter(parts))].select([])
        else:
            dataset = datasets.concatenate_datasets([parts[s] for s in parts])
    else:
        path = Path(spec)
        if not path.exists():
            known = [EXAMPLES_SOURCE, *SEED_SOURCES]
            raise InputError(
                f"{spec!s} is not a seed source{closest(str(spec), known)} ({', '.join(known)}), a folder, a file "
                "or a load_dataset spec (REPO_OR_FOLDER[:CONFIG])"
            )
        drops = RowDrops(skip_bad_rows)
        table = records_table(record_files(path), drops)
        dataset = datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=RECORD_FEATURES))
        if split is not None:
            dataset = dataset.filter(lambda row: row["split"] == split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    skipped = {reason: count for reason, count in drops.items() if count}
    if skipped:
        if dropped is not None:
            dropped.update(skipped)
        logger.warning("%s: %s", spec, RowDrops.describe(skipped))
    return dataset


def build_seeds(source: str, data_dir: str | Path | None = None, *, skip_bad_rows: bool = False) -> DatasetBuild:
    """Build one seed source (``paragraph2actions``, ``smiles2actions``, ``ord``, ``examples``, or an ORD file).

    Data come from ``data_dir`` (the layout of the reference data) or, without one, from the upstream
    files; ``examples`` is the small set the package ships (:mod:`chemactor.examples`), so every stage that
    takes a seed source also runs with no reference data at all. A ``load_dataset`` spec
    (:func:`load_dataset_spec`: a published dataset such as ``org/chemactor-data:seeds``, or a folder that
    ``chemactor data build`` wrote) is read as it was published. Always regenerated (never read from a
    stale cache), so the drop counts are those of this run. A bad row raises
    :class:`~chemactor.data.RecordError` naming file and line, unless ``skip_bad_rows``: then it is dropped
    and counted by reason, like the rows a source cannot use (an ORD reaction without SMILES).
    """
    started = time.perf_counter()
    if source == EXAMPLES_SOURCE:
        from chemactor.examples import load_examples

        return DatasetBuild(source, load_examples(), {}, time.perf_counter() - started)
    if is_ord_file(source):  # an Open Reaction Database file: each reaction's split comes with it
        build = build_generated(source, skip_bad_rows=skip_bad_rows)
        return DatasetBuild(source, build.dataset, build.dropped, time.perf_counter() - started)
    if source not in SEED_SOURCES and is_dataset_spec(source):
        return DatasetBuild(source, load_dataset_spec(source), {}, time.perf_counter() - started)
    if source not in SEED_SOURCES:
        raise InputError(
            f"unknown seed source {source!r}{closest(source, SEED_SOURCES)}; known: {', '.join(SEED_SOURCES)}"
        )
    directory = str(data_dir) if data_dir is not None else None
    dataset, builder = _prepare(ChemActorSeeds, config_name=source, data_dir=directory, skip_bad_rows=skip_bad_rows)
    return DatasetBuild(source, dataset, dict(builder.dropped), time.perf_counter() - started)


def load_seeds(source: str, data_dir: str | Path | None = None) -> datasets.DatasetDict:
    """One seed source as train/validation/test in the record schema (see :func:`build_seeds`)."""
    return build_seeds(source, data_dir).dataset


def load_generated(path: str | Path, skip_bad_rows: bool = False) -> datasets.Dataset:
    """Generated records, provenance kept in ``meta``: a generation output directory (JSONL shards and/or
    parquet), or a ``load_dataset`` spec such as ``org/chemactor-data:selected`` (every split).

    The same as :func:`read_records`; bad rows raise naming file and line unless
    ``skip_bad_rows`` (then they are dropped, logged and counted by reason: see :func:`build_generated`).
    """
    return read_records(path, skip_bad_rows=skip_bad_rows)


def build_generated(path: str | Path, *, skip_bad_rows: bool = False) -> DatasetBuild:
    """A generation output directory as ``source="generated"``, split by each row's own ``split`` column.

    The form to export and publish generated data in, beside the seeds (``chemactor data build
    --source generated --data-dir DIR``).
    """
    started = time.perf_counter()
    built, builder = _prepare(ChemActorGenerated, data_dir=str(path), skip_bad_rows=skip_bad_rows)
    rows = built["train"]
    present = set(rows["split"])
    splits = {split: rows.filter(lambda row, s=split: row["split"] == s) for split in SPLITS if split in present}
    return DatasetBuild("generated", datasets.DatasetDict(splits), dict(builder.dropped), time.perf_counter() - started)


def cross_split_texts(dataset: datasets.DatasetDict) -> int:
    """How many distinct (normalized) descriptions occur in more than one split: a leak when above 0."""
    seen: dict[str, set[str]] = {}
    for split, rows in dataset.items():
        for text in rows["description"]:
            if text:
                seen.setdefault(text_hash(text), set()).add(split)
    return sum(len(splits) > 1 for splits in seen.values())


def _prepare(
    builder_class: type[datasets.DatasetBuilder], **kwargs: Any
) -> tuple[datasets.DatasetDict, datasets.DatasetBuilder]:
    """Build into a private, temporary cache and load the splits into memory; return them and the builder.

    A fresh cache each time means no stale result and no collision when several processes build the
    same config at once (a shared cache with forced regeneration deletes files under a neighbour).
    ``datasets`` wraps any exception raised while generating examples in ``DatasetGenerationError``;
    our own typed error (file, line, field) is what a user needs to see, so it is re-raised unwrapped.
    """
    bars = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()  # "Generating train split" per file read says nothing to a user
    try:
        with tempfile.TemporaryDirectory(prefix="chemactor-build-") as cache_dir:
            builder = builder_class(cache_dir=cache_dir, **kwargs)
            try:
                builder.download_and_prepare()
            except datasets.exceptions.DatasetGenerationError as exc:
                cause = exc.__cause__
                if isinstance(cause, (ChemActorError, OSError)):
                    raise cause from None
                raise
            # as_dataset refuses a split with no rows (an empty file, every row skipped): make it empty instead
            splits = {
                name: builder.as_dataset(split=name, in_memory=True)
                if info.num_examples
                else datasets.Dataset.from_dict({name: [] for name in RECORD_FIELDS}, features=RECORD_FEATURES)
                for name, info in builder.info.splits.items()
            }
            return datasets.DatasetDict(splits), builder
    finally:
        if not bars:
            datasets.utils.enable_progress_bars()
