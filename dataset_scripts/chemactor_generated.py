"""``ChemActorGenerated``: a generation output folder (or any file of records) as one record-schema dataset.

    builder = ChemActorGenerated(data_dir="outputs/generation")
    builder.download_and_prepare(); dataset = builder.as_dataset()["train"]

See :mod:`chemactor.builders.generated` for what is read and how bad rows are handled.
"""

from chemactor.builders.generated import ChemActorGenerated, GeneratedConfig

__all__ = ["ChemActorGenerated", "GeneratedConfig"]
