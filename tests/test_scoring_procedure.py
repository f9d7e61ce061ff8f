"""R2D scores: BLEU/ROUGE through their libraries and the quantity scores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chemactor.scoring import extract_quantities, procedure_metrics
from chemactor.scoring.procedure_metrics import UNITS

REFERENCE = "To THF (10 ml) at 0 °C was added NaH (0.5 mmol); the mixture was stirred for 2 hours."


def test_quantities_are_normalized():
    text = "1.5 M HCl (2 mL), 3 equiv., -78 °C then 0-5 ° C, 10 minutes, 3 days, 50%, 12 mg, 2mM"
    assert extract_quantities(text) == {
        (1.5, "M"): 1,
        (2.0, "mL"): 1,
        (3.0, "equiv"): 1,
        (-78.0, "°C"): 1,
        (5.0, "°C"): 1,
        (10.0, "min"): 1,
        (3.0, "d"): 1,
        (50.0, "%"): 1,
        (12.0, "mg"): 1,
        (2.0, "mM"): 1,
    }


def test_words_are_not_units():
    assert extract_quantities("2 mice in 3 hoods, step 4 done, 10 molecules") == {}


def test_quantity_recall_and_precision():
    scores = procedure_metrics(["NaH (5 mmol) was added to THF (10 mL) at 0 °C and stirred for 2 h."], [REFERENCE])
    # 10 mL, 0 °C and 2 h match; 5 mmol is not the reference's 0.5 mmol
    assert scores["quantity_recall"] == 0.75
    assert scores["quantity_precision"] == 0.75
    assert scores["reference_quantities"] == 4


def test_text_scores():
    same = procedure_metrics([REFERENCE], [REFERENCE])
    assert same["bleu"] == pytest.approx(1.0)
    assert same["rouge1"] == same["rouge2"] == same["rougeL"] == 1.0
    unrelated = procedure_metrics(["The product was recrystallized."], [REFERENCE])
    assert unrelated["bleu"] < 0.05
    assert unrelated["rouge2"] == 0.0
    assert unrelated["quantity_recall"] == 0.0
    assert unrelated["quantity_precision"] == 1.0  # nothing predicted, nothing wrong


@given(
    st.floats(min_value=0, max_value=5000, allow_nan=False).map(lambda value: round(value, 2)),
    st.sampled_from(sorted(UNITS)),
    st.sampled_from(["", " "]),
)
def test_any_quantity_is_read_back(value, unit, space):
    text = f"then {value:g}{space}{unit} of it"
    assert extract_quantities(text) == {(float(f"{value:g}"), UNITS[unit]): 1}
