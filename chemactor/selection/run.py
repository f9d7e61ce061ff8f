"""Selection from files to files: what ``chemactor select`` does, callable from Python and recipes.

Output folder layout:

- ``selected/data.jsonl``: the kept rows (records keep the record schema and gain their scores in
  ``meta.divergence``), readable by ``chemactor.builders.read_records``;
- ``scores.parquet``: every pool row's scores, flags (``FLAG_COLUMNS``) and ``selected`` (and ``id`` if any);
- ``report.md`` with ``score_histograms.png`` and ``action_types.png``;
- ``selector/``: the fitted selector (``DivergenceSelector.from_pretrained``), to score more rows the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import numpy as np

from chemactor.builders import RowDrops, is_source_name, load_seeds, read_records
from chemactor.data import RECORD_FIELDS, update_meta, write_records
from chemactor.selection.report import write_report
from chemactor.selection.selector import FLAG_COLUMNS, DivergenceSelector, SelectionInputError

__all__ = ["held_out_pairs", "load_pairs", "run_selection"]


def load_pairs(
    spec: str | Path,
    data_dir: str | Path | None = None,
    *,
    skip_bad_rows: bool = False,
    dropped: RowDrops | None = None,
) -> datasets.Dataset:
    """Records with ``description`` and ``actions``: a seed source name or ``examples`` (its train split), a
    generation output folder, or a ``.jsonl``/``.parquet`` file (:func:`chemactor.builders.read_records`:
    bad rows and repeated ids raise naming file and line, or are dropped and counted with ``skip_bad_rows``)."""
    split = "train" if is_source_name(spec) else None
    rows = read_records(spec, data_dir=data_dir, split=split, skip_bad_rows=skip_bad_rows, dropped=dropped)
    if not len(rows):
        raise SelectionInputError(f"{spec!s}: no records to select with")
    return rows


def held_out_pairs(sources: list[str], data_dir: str | Path | None = None) -> datasets.Dataset:
    """The validation and test rows (``description``, ``actions``) of the named seed sources, for decontamination."""
    parts = []
    for source in sources:
        splits = load_seeds(source, data_dir)
        parts += [splits[name].select_columns(["description", "actions"]) for name in ("validation", "test")]
    return datasets.concatenate_datasets(parts)


def run_selection(
    reference: datasets.Dataset | None,
    pool: datasets.Dataset,
    output_dir: str | Path,
    *,
    fraction: float | None = None,
    k: int | None = None,
    threshold: float | None = None,
    num_proc: int | None = None,
    selector: DivergenceSelector | None = None,
    held_out: datasets.Dataset | None = None,
) -> dict[str, Any]:
    """Fit on ``reference``, score ``pool``, keep rows by one rule, write the output folder; a summary.

    ``held_out``: rows no training set may overlap (the validation and test splits of the seed sources,
    see :func:`held_out_pairs`); pool rows that do are dropped and counted as ``contaminated``. A
    ``selector`` that is already fitted (``DivergenceSelector.from_pretrained``) is used as it is when
    ``reference`` is ``None``: it scores as it did where it was fitted, and keeps out ``held_out`` besides
    the rows it was fitted with.
    """
    selector = selector or DivergenceSelector()
    if reference is not None:
        selector.fit(reference, held_out=held_out)
    elif not selector.fitted:
        raise SelectionInputError("give a reference to fit on, or a fitted selector")
    elif held_out is not None:
        selector.add_held_out(held_out)
    scored = selector.score(pool, num_proc=num_proc)
    mask = selector.selection_mask(scored, fraction=fraction, k=k, threshold=threshold)
    scored = scored.add_column("selected", mask)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    score_columns = [*selector.score_columns, "divergence"]
    flags = list(FLAG_COLUMNS)
    kept = scored.select(np.flatnonzero(mask))
    selected_path = output_dir / "selected" / "data.jsonl"
    if all(name in kept.column_names for name in RECORD_FIELDS):
        records = (
            update_meta(row, divergence={column: round(row[column], 4) for column in score_columns}) for row in kept
        )
        write_records(records, selected_path)
    else:
        selected_path.parent.mkdir(parents=True, exist_ok=True)
        kept.remove_columns([*score_columns, *flags, "selected"]).to_json(str(selected_path))
    keys = ["id"] if "id" in scored.column_names else []
    scored.select_columns([*keys, *score_columns, *flags, "selected"]).to_parquet(str(output_dir / "scores.parquet"))

    options = {"fraction": fraction, "k": k, "threshold": threshold}
    rule = ", ".join(f"{name}={value}" for name, value in options.items() if value is not None)
    report = write_report(selector, scored, output_dir, rule=rule)
    selector.save_pretrained(output_dir / "selector")
    return {
        "reference": len(reference) if reference is not None else None,
        "pool": len(pool),
        "duplicates": int(np.sum(scored["duplicate"])),
        "seed_copies": int(np.sum(scored["seed_copy"])),
        "contaminated": int(np.sum(scored["contaminated"])),
        "crosscheck_failed": int(np.count_nonzero(scored["crosscheck_failed"])),
        "selected": int(mask.sum()),
        "selected_path": str(selected_path),
        "report": str(report),
    }
