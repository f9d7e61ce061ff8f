"""``datasets`` builders for ChemActor: the seed sources and the output of the generation stage.

The classes live in :mod:`chemactor.builders` (so an installed package has them); these modules are the
builder-script form the design card asks for, importable from a checkout.
"""

from dataset_scripts.chemactor_generated import ChemActorGenerated
from dataset_scripts.chemactor_seeds import ChemActorSeeds

__all__ = ["ChemActorGenerated", "ChemActorSeeds"]
