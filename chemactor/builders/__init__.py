"""The data layer above the record schema: ``datasets`` builders, loading records, and mixing them for training.

    from chemactor.builders import read_records, load_seeds, build_seeds, load_generated, mix

    seeds = load_seeds("paragraph2actions", "../shared/data")     # DatasetDict train/validation/test
    pool = read_records("outputs/generation", skip_bad_rows=True)  # any records: a source, file or folder
    published = load_seeds("org/chemactor-data:seeds")              # or a load_dataset spec REPO_OR_FOLDER:CONFIG
    train = mix(seeds["train"], pool, ratio="1:3", seed=0)

The builder classes (:class:`ChemActorSeeds`, :class:`ChemActorGenerated`) are also exposed by the top-level
``dataset_scripts`` modules, the form ``datasets`` builders are distributed in.
"""

from chemactor.builders.drops import RowDrops
from chemactor.builders.generated import ChemActorGenerated
from chemactor.builders.mix import mix, parse_ratio
from chemactor.builders.records import (
    DatasetBuild,
    build_generated,
    build_seeds,
    cross_split_texts,
    is_dataset_spec,
    is_source_name,
    load_dataset_spec,
    load_generated,
    load_seeds,
    read_records,
)
from chemactor.builders.seeds import ChemActorSeeds

__all__ = [
    "ChemActorGenerated",
    "ChemActorSeeds",
    "DatasetBuild",
    "RowDrops",
    "build_generated",
    "build_seeds",
    "cross_split_texts",
    "is_dataset_spec",
    "is_source_name",
    "load_dataset_spec",
    "load_generated",
    "load_seeds",
    "mix",
    "parse_ratio",
    "read_records",
]
