"""Growing a seed set with generated data: R2D -> D2A -> cross-check, resumable, through any backend.

>>> from chemactor.generation import EndpointBackend, GenerationRunner, RunSettings, read_inputs
>>> backend = EndpointBackend(["http://tgi-1:8080", "http://tgi-2:8080"], api="generate")  # doctest: +SKIP
>>> runner = GenerationRunner(backend, RunSettings(steps="chain"), examples=read_inputs("examples"))  # doctest: +SKIP
>>> print(runner.run(read_inputs("ord", data_dir, limit=1000), "out/generated"))  # doctest: +SKIP

From target molecules instead of reactions (a ``.smi`` file works as ``read_inputs("targets.smi")``)::

    runner.run(target_records(["Brc1ccc(OCc2ccccc2)cc1", ("CC(=O)Nc1ccccc1", "acetanilide")]), "out/targets")

Without an endpoint, ``AugmentBackend`` with ``steps="augment"`` grows (description, actions) pairs by
rule-based substitution, so the pipeline runs anywhere.
"""

from chemactor.builders.targets import target_records
from chemactor.generation.augment import Augmenter
from chemactor.generation.backends import (
    AugmentBackend,
    Backend,
    EndpointBackend,
    Generation,
    GenerationError,
    TransformersBackend,
)
from chemactor.generation.crosscheck import crosscheck
from chemactor.generation.runner import (
    GenerationRunner,
    ResumeError,
    RunSettings,
    RunSummary,
    read_inputs,
)

__all__ = [
    "AugmentBackend",
    "Augmenter",
    "Backend",
    "EndpointBackend",
    "Generation",
    "GenerationError",
    "GenerationRunner",
    "ResumeError",
    "RunSettings",
    "RunSummary",
    "TransformersBackend",
    "crosscheck",
    "read_inputs",
    "target_records",
]
