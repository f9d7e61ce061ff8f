"""A tiny from-scratch model, run locally (TransformersBackend) and served by ``transformers serve``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from chemactor.examples import example_records
from chemactor.generation import EndpointBackend, Generation, GenerationRunner, RunSettings, TransformersBackend
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
    # An untrained model samples anything, end-of-text first included, and which prompts share a batch (so
    # which random draws each gets) depends on timing: without special tokens no answer can come back empty.
    backend.model.generation_config.suppress_tokens = backend.tokenizer.all_special_ids
    sampling = {"max_new_tokens": 8, "temperature": 1.0, "seed": 0}
    # Unconstrained: under the action constraint a finished answer allows only end-of-text, which is suppressed
    # here (tests/test_constrained_decoding.py runs the local model under the constraint).
    settings = RunSettings(shots=1, sampling=sampling, constrained=False)
    runner = GenerationRunner(backend, settings, example_records())
    summary = runner.run(reactions, tmp_path, progress=False)
    assert summary.done == 3 and not summary.failed
    assert summary.tokens["completion_tokens"] > 0 and backend.stats["batches"] >= 2  # r2d wave, then d2a wave


@pytest.fixture
def served_model(model_dir, tgi_server):
    """``transformers serve`` (a real OpenAI-compatible server) on the tiny model; yields its URL.

    ``tgi_server`` is requested only for what it does to the client side: offline mode lifted for loopback.
    """
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = "{% for message in messages %}{{ message['content'] }}\n{% endfor %}"
    tokenizer.save_pretrained(model_dir)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).with_name("transformers")), "serve", str(model_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                assert server.poll() is None, "transformers serve exited"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_endpoint_backend_against_transformers_serve(served_model, model_dir):
    backend = EndpointBackend(served_model, model=str(model_dir), api="chat")
    results = backend.generate_many(
        ["ADD water", "STIR", "Filter", "The mixture"] * 3, progress=False, max_new_tokens=4
    )
    assert backend.max_concurrency == 8  # no TGI /info here: the default per endpoint
    assert all(isinstance(r, Generation) and r.usage["completion_tokens"] == 4 for r in results)
    streamed = EndpointBackend(served_model, model=str(model_dir), stream=True)
    [generation] = streamed.generate_many(["ADD water"], progress=False, max_new_tokens=4)
    assert generation.text == results[0].text  # greedy: the same answer token by token
