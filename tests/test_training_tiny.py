"""The chemistry tokenizer and the tiny from-scratch model that the offline recipe and other tests build on."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from chemactor.training import build_tiny_model, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer(shared_data):
    rows = [json.loads(line) for line in (shared_data / "paragraph2actions" / "pairs.jsonl").open(encoding="utf-8")]
    return train_tokenizer([row["sentence"] for row in rows] + [row["actions"] for row in rows], vocab_size=600)


def test_tokenizer_splits_digits_and_smiles_punctuation(tokenizer):
    assert tokenizer.tokenize("ADD DCM (100 mL)")[-6:] == ["(", "1", "0", "0", "ĠmL", ")"]
    assert tokenizer.tokenize("CC(=O)O>>C")[-8:] == ["(", "=", "O", ")", "O", ">", ">", "C"]
    assert tokenizer("ADD water")["input_ids"][0] == tokenizer.bos_token_id


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80).filter(lambda text: "<|" not in text))
def test_tokenizer_round_trips_any_text(tokenizer, text):
    """Any text but the special-token markup itself survives encode/decode unchanged."""
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_tiny_model_and_tokenizer_load_from_one_directory(tokenizer, tmp_path):
    model = build_tiny_model(tokenizer, num_hidden_layers=1)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.num_hidden_layers == 1
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    loaded_model = AutoModelForCausalLM.from_pretrained(tmp_path)
    text = "STIR for 2 h at 25 °C."
    assert loaded_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
    batch = loaded_tokenizer(["ADD water", "STIR for 2 h"], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = model(**batch).logits
        assert torch.allclose(loaded_model(**batch).logits, expected)
    generated = loaded_model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert generated.shape == (2, batch["input_ids"].shape[1] + 4)
