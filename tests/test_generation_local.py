"""TransformersBackend with a tiny from-scratch model: batched generation that matches one-by-one."""

from __future__ import annotations

import pytest

from chemactor.examples import example_records
from chemactor.generation import Generation, GenerationRunner, RunSettings, TransformersBackend
from chemactor.training import build_tiny_model, train_tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    texts = [row["description"] for row in example_records()] + [row["actions"] for row in example_records()]
    tokenizer = train_tokenizer(texts, vocab_size=400)
    directory = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(tokenizer, num_hidden_layers=1).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.slow
def test_concurrent_requests_are_batched_and_padding_changes_nothing(model_dir):
    prompts = ["ADD water", "The mixture was stirred at room temperature for 2 h and then concentrated.", "STIR"]
    prompts += ["Filter", "ADD THF (10 mL); STIR for 1 h at 0 °C.", "DCM"]
    backend = TransformersBackend(model_dir, batch_size=4)
    batched = backend.generate_many(prompts, progress=False, max_new_tokens=6)
    assert backend.stats["batches"] == 2 and all(isinstance(g, Generation) for g in batched)
    alone = [TransformersBackend(model_dir).generate_many([p], progress=False, max_new_tokens=6)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in alone]  # left padding + attention mask are right
    for generation, prompt in zip(batched, prompts, strict=True):
        assert 0 < generation.usage["completion_tokens"] <= 6
        assert generation.usage["prompt_tokens"] == len(backend.tokenizer(prompt)["input_ids"])


@pytest.mark.slow
def test_the_chain_runs_on_a_local_model(model_dir, tmp_path):
    reactions = [row for row in example_records() if row["reaction_smiles"]][:3]
    backend = TransformersBackend(model_dir, batch_size=4)
    runner = GenerationRunner(backend, RunSettings(shots=1, sampling={"max_new_tokens": 8}), example_records())
    summary = runner.run(reactions, tmp_path, progress=False)
    assert summary.done == 3 and not summary.failed
    assert summary.tokens["completion_tokens"] > 0 and backend.stats["batches"] >= 2  # r2d wave, then d2a wave
