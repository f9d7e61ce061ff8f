"""``datasets`` builders for ChemActor: the seed sources and the output of the generation stage."""

from dataset_scripts.chemactor_generated import ChemActorGenerated
from dataset_scripts.chemactor_seeds import ChemActorSeeds

__all__ = ["ChemActorGenerated", "ChemActorSeeds"]
