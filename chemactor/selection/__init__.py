"""Distribution-divergence selection: keep the generated pairs whose distribution is closest to real data.

    from chemactor.selection import DivergenceSelector
    selector = DivergenceSelector().fit(reference)      # real pairs: "description", "actions"
    scored = selector.score(pool, num_proc=2)           # + "divergence" (lower = closer), per-view columns
    selected = selector.select(scored, fraction=0.4)    # or k=..., threshold=...
    selector.save_pretrained("selector/")               # DivergenceSelector.from_pretrained("selector/")
    train = mix(seeds, selected, ratio="1:3", seed=0)

The method and its formulas are documented in :mod:`chemactor.selection.selector` (scores and
standardization), :mod:`chemactor.selection.divergence` (KL/JS), :mod:`chemactor.selection.features`
(the views) and :mod:`chemactor.selection.text` (form, content and near-copies).
"""

from chemactor.builders import mix, parse_ratio
from chemactor.selection.divergence import sample_divergences, set_divergences
from chemactor.selection.features import (
    ActionTypeView,
    AgreementView,
    ConsistencyView,
    CoverageView,
    FormView,
    LengthView,
    NgramView,
    View,
    default_views,
)
from chemactor.selection.selector import DEFAULT_WEIGHTS, FLAG_COLUMNS, DivergenceSelector, SelectionInputError

__all__ = [
    "DEFAULT_WEIGHTS",
    "FLAG_COLUMNS",
    "ActionTypeView",
    "AgreementView",
    "ConsistencyView",
    "CoverageView",
    "DivergenceSelector",
    "FormView",
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
