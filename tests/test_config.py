"""The recipe validator: every key path and type checked, closest names suggested, nothing else ever raised."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chemactor.config import parse_config
from chemactor.errors import ConfigError
from chemactor.generation.runner import GenerationConfig
from chemactor.pipeline import PipelineConfig, PipelineConfigError


@dataclass
class Inner:
    rate: float = 0.5
    names: list[str] = field(default_factory=list, metadata={"choices": ("alpha", "beta")})


@dataclass
class Outer:
    count: int = field(default=1, metadata={"min": 1})
    mode: Literal["fast", "slow"] = "fast"
    flag: bool = False
    label: str | None = None
    inner: Inner = field(default_factory=Inner)
    extra: dict[str, int] | None = None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cont": 2}, r"^f\.yaml: cont: unknown key \(did you mean 'count'\?\)$"),
        ({"inner": {"rat": 1}}, r"^f\.yaml: inner\.rat: unknown key \(did you mean 'rate'\?\)$"),
        ({"count": "ten"}, r"^f\.yaml: count: expected an integer, got the string 'ten'$"),
        ({"count": 2.5}, r"^f\.yaml: count: expected an integer, got float 2\.5$"),
        ({"count": True}, r"^f\.yaml: count: expected an integer, got bool True$"),
        ({"count": 0}, r"^f\.yaml: count: must be at least 1, got 0$"),
        ({"mode": "slwo"}, r"^f\.yaml: mode: the string 'slwo' is not one of fast, slow \(did you mean 'slow'\?\)$"),
        ({"flag": "yes"}, r"^f\.yaml: flag: expected true or false, got the string 'yes'$"),
        ({"label": 3}, r"^f\.yaml: label: expected a string, got int 3$"),
        ({"inner": {"names": ["alpha", "bta"]}}, r"^f\.yaml: inner\.names\[1\]: 'bta' is not one of .*'beta'"),
        ({"inner": 3}, r"^f\.yaml: inner: must be a mapping of keys, got int 3$"),
        ({"extra": {"a": "x"}}, r"^f\.yaml: extra\.a: expected an integer, got the string 'x'$"),
    ],
)
def test_each_mistake_is_named_by_its_key_path(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(Outer, raw, source="f.yaml")


def test_values_that_fit_are_parsed_and_numeric_strings_read_as_numbers():
    parsed = parse_config(Outer, {"count": "3", "inner": {"rate": "1e-5", "names": ["beta"]}, "extra": {"a": 1}})
    assert parsed == Outer(count=3, inner=Inner(rate=1e-5, names=["beta"]), extra={"a": 1})
    assert parse_config(Outer, {"inner": {"rate": 2}}).inner.rate == 2  # an int where a float is expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
generation_keys = st.sampled_from(
    ["samples", "limit", "sampling", "split", "backend", "endpoints", "api", "input", "examples", "bogus"]
)


@given(st.dictionaries(generation_keys | st.text(max_size=6), json_values, max_size=5))
def test_any_generation_recipe_parses_or_raises_config_error(raw):
    with contextlib.suppress(ConfigError):
        parse_config(GenerationConfig, raw)


@given(st.dictionaries(st.sampled_from(["seeds", "generation", "selection", "evaluation", "seed"]), json_values))
def test_any_pipeline_recipe_parses_or_raises_config_error(raw):
    with contextlib.suppress(PipelineConfigError):
        PipelineConfig.from_mapping({"output_dir": "out", **raw})


@given(st.text(max_size=300))
def test_an_input_that_is_neither_a_source_nor_a_file_is_named(name):
    try:
        parse_config(GenerationConfig, {"input": name * 20})
    except ConfigError as exc:
        assert str(exc).startswith("input: ")
