"""Mix real seeds and selected generated rows at a fixed ratio for training.

The ratio is what matters to the trained model (too much generated data drowns the real signal), so
``mix`` takes the largest subset of both that honours it exactly, rather than all of both.
"""

from __future__ import annotations

import datasets

from chemactor.data import RECORD_FIELDS
from chemactor.errors import ConfigError, InputError

__all__ = ["mix", "parse_ratio"]


def parse_ratio(ratio: str) -> tuple[int, int]:
    """``"1:3"`` -> ``(1, 3)`` (seeds : generated); raises :class:`ConfigError` naming a malformed ratio."""
    parts = ratio.split(":")
    try:
        seeds, generated = (int(part) for part in parts)
    except ValueError:
        raise ConfigError(f"ratio must look like '1:3' (seeds:generated, whole numbers), got {ratio!r}") from None
    if seeds < 0 or generated < 0 or seeds + generated == 0:
        raise ConfigError(f"ratio needs non-negative parts, not both zero, got {ratio!r}")
    return seeds, generated


def mix(seeds: datasets.Dataset, generated: datasets.Dataset, ratio: str = "1:3", seed: int = 0) -> datasets.Dataset:
    """A shuffled dataset of seed and generated records at ``ratio`` (seeds:generated).

    Both inputs keep only the record columns (selection scores stay in the selector's output). When one
    side is short, the other is subsampled (with ``seed``) so that the ratio still holds.
    """
    seed_part, generated_part = parse_ratio(ratio)
    for name, dataset in (("seeds", seeds), ("generated", generated)):
        missing = [column for column in RECORD_FIELDS if column not in dataset.column_names]
        if missing:
            raise InputError(f"{name} is missing record column(s) {', '.join(missing)}")
    # the number of whole "units" of the ratio that both sides can fill
    units = min(
        len(seeds) // seed_part if seed_part else len(generated) // generated_part,
        len(generated) // generated_part if generated_part else len(seeds) // seed_part,
    )
    parts = []
    for dataset, share in ((seeds, seed_part), (generated, generated_part)):
        dataset = dataset.select_columns(list(RECORD_FIELDS))
        parts.append(dataset.shuffle(seed=seed).select(range(units * share)))
    return datasets.concatenate_datasets(parts).shuffle(seed=seed).flatten_indices()
