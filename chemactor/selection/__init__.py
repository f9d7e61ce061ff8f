"""Distribution-divergence selection: keep the generated pairs whose distribution is closest to real data.

    from chemactor.selection import DivergenceSelector
    selector = DivergenceSelector().fit(reference)      # real pairs: "description", "actions"
    scored = selector.score(pool, num_proc=2)           # + "divergence" (lower = closer), per-view columns
    selected = selector.select(scored, fraction=0.4)    # or k=..., threshold=...
    train = mix(seeds, selected, ratio="1:3", seed=0)

The method and its formulas are documented in :mod:`chemactor.selection.selector` (scores and
standardization), :mod:`chemactor.selection.divergence` (KL/JS) and :mod:`chemactor.selection.features`
(the views).
"""

from chemactor.builders import mix, parse_ratio
from chemactor.selection.divergence import sample_divergences, set_divergences
from chemactor.selection.features import (
    ActionTypeView,
    ConsistencyView,
    LengthView,
    NgramView,
    View,
    default_views,
)
from chemactor.selection.selector import DEFAULT_WEIGHTS, DivergenceSelector, SelectionInputError

__all__ = [
    "DEFAULT_WEIGHTS",
    "ActionTypeView",
    "ConsistencyView",
    "DivergenceSelector",
    "LengthView",
    "NgramView",
    "SelectionInputError",
    "View",
    "default_views",
    "mix",
    "parse_ratio",
    "sample_divergences",
    "set_divergences",
]
