"""``ChemActorSeeds``: the annotated seed sources (``paragraph2actions``, ``smiles2actions``, ``ord``).

    builder = ChemActorSeeds(config_name="ord", data_dir="../shared/data")
    builder.download_and_prepare(); dataset = builder.as_dataset()

See :mod:`chemactor.builders.seeds` for the configs, licenses and how each source is read.
"""

from chemactor.builders.seeds import ChemActorSeeds, SeedConfig

__all__ = ["ChemActorSeeds", "SeedConfig"]
