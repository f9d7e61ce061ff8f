"""The generation chain: prompts, augmentation, cross-check, and the resumable runner end to end."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chemactor.actions import ACTION_NAMES, parse_actions
from chemactor.builders import load_generated
from chemactor.data import get_meta, to_dataset, write_records
from chemactor.errors import ConfigError
from chemactor.examples import example_records
from chemactor.generation import (
    AugmentBackend,
    Augmenter,
    EndpointBackend,
    GenerationRunner,
    ResumeError,
    RunSettings,
    crosscheck,
    read_inputs,
)
from chemactor.generation import runner as runner_module
from chemactor.generation.augment import UNIT_KINDS, numeric_values
from chemactor.generation.runner import IdSet, OutputStore, clean_completion, id_key, run_from_config
from chemactor.prompts import load_prompt

EXAMPLES = example_records()
REACTIONS = [row for row in EXAMPLES if row["reaction_smiles"]]


def shard_rows(output_dir) -> list[dict]:
    return [json.loads(line) for path in sorted(output_dir.glob("shards/*.jsonl")) for line in path.open()]


def example_responder(answers: dict[str, str] | None = None):
    """A model that knows the example set: the description of a reaction, the actions of a description."""
    by_smiles = {row["reaction_smiles"]: row["description"] for row in REACTIONS}
    by_description = {row["description"]: row["actions"] for row in EXAMPLES}
    by_description.update(answers or {})
    by_actions = {row["actions"]: row["description"] for row in EXAMPLES}

    def respond(kind: str, payload: dict) -> str:
        prompt = payload["messages"][-1]["content"] if kind == "chat" else payload["inputs"]
        if prompt.startswith("Write the experimental procedure text"):  # A2D, the back-translation
            return by_actions.get(prompt.rsplit("### Actions\n", 1)[1].split("\n### Procedure")[0], "no idea")
        if prompt.rstrip().endswith("### Procedure"):
            smiles = re.findall(r"Reaction SMILES: (\S+)", prompt)[-1]
            return by_smiles[smiles] + "\n### Reaction\n(the model keeps going)"
        description = prompt.rsplit("### Procedure\n", 1)[1].split("\n### Actions")[0]
        return by_description[description] + "\n\n### Procedure\n"

    return respond


# --- prompts ----------------------------------------------------------------------------------------


def test_prompt_templates_are_versioned_and_hashed():
    prompt = load_prompt("d2a-v1")
    text = prompt.render(examples=EXAMPLES[:2], description="Stir it.", action_names=["ADD", "STIR"])
    assert text.endswith("### Procedure\nStir it.\n### Actions\n")
    assert EXAMPLES[1]["actions"] in text and "ADD, STIR" in text
    assert prompt.provenance() == {"task": "d2a", "version": "v1", "sha256": prompt.sha256} and len(prompt.sha256) == 64
    with pytest.raises(ConfigError, match=r"unknown prompt 'd2a-v9' \(did you mean 'd2a-v1'\?\)"):
        chain_runner("http://127.0.0.1:1", steps="d2a", prompt_version="v9")  # before any request


def test_completions_are_cut_at_the_next_few_shot_block():
    assert clean_completion(" ADD water.\nSTIR.\n### Procedure\nx", "d2a") == "ADD water."
    assert clean_completion("Line one.\nLine two.\n### Reaction\nC>>C", "r2d") == "Line one.\nLine two."


# --- augmentation -----------------------------------------------------------------------------------


@given(
    number=st.from_regex(r"[1-9][0-9]{0,2}(\.[0-9]{1,2})?", fullmatch=True),
    unit=st.sampled_from(sorted(UNIT_KINDS)),
    space=st.sampled_from(["", " "]),
)
def test_numeric_values_reads_number_and_unit_kind(number, unit, space):
    assert numeric_values(f"was added ({number}{space}{unit}) and") == {(number, UNIT_KINDS[unit])}
    assert numeric_values(f"compound{number}{unit}x") == set()  # part of a longer token


NAMES = ["ethyl acetate", "toluene", "sodium hydride", "4-bromophenol", "methanol", "DMF", "THF"]


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    grams=st.decimals(min_value="0.1", max_value="99", places=2).map(str),
    hours=st.integers(min_value=1, max_value=48),
    celsius=st.integers(min_value=-78, max_value=150),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_augmentation_keeps_text_and_actions_in_agreement(name, grams, hours, celsius, seed):
    description = f"{name} ({grams} g) was stirred for {hours} h at {celsius} °C."
    actions = f"ADD {name} ({grams} g); STIR for {hours} h at {celsius} °C."
    augmenter = Augmenter(names={"ADD": tuple(NAMES)}, name_rate=1.0, value_rate=1.0)
    new_description, new_actions, substitutions = augmenter.augment(description, actions, random.Random(seed))
    assert parse_actions(new_actions)
    assert numeric_values(new_actions) == numeric_values(new_description)
    assert crosscheck(new_actions, new_description)["passed"]
    new_name = substitutions[name]
    assert new_name != name and new_name in new_description and new_name in new_actions
    assert f"{hours} hours" in substitutions and f"{celsius} temperature" in substitutions


def test_augment_backend_grows_the_shared_paragraph2actions_seeds(shared_data, tmp_path):
    seeds = read_inputs("paragraph2actions", shared_data, split="train")
    backend = AugmentBackend(seeds, seed=1)
    summary = GenerationRunner(backend, RunSettings(steps="augment", samples=3)).run(seeds, tmp_path, progress=False)
    rows = shard_rows(tmp_path)
    assert summary.done == len(rows) == 3 * len(seeds) and not summary.failed
    assert {row["id"] for row in rows} == {f"{seed['id']}/{k}" for seed in seeds for k in range(3)}
    seed_by_id = {seed["id"]: seed for seed in seeds}
    changed = 0
    for row in rows:
        meta = get_meta(row)
        seed = seed_by_id[meta["input"]["id"]]
        assert row["source"] == "augmented" and row["split"] == "train"
        for old, new in meta["substitutions"].items():
            if " " not in old or old.split()[-1] not in UNIT_KINDS.values():  # a compound name
                assert new in row["description"] and new in row["actions"]
        changed += row["description"] != seed["description"]
        if crosscheck(seed["actions"], seed["description"])["passed"]:
            assert meta["crosscheck"]["checks"]["parse"], (seed["actions"], row["actions"])
    assert changed > len(rows) / 2
    # the same seed, row and sample give the same variant: what a resumed run relies on
    assert backend.variant(seeds[2], 1) == AugmentBackend(seeds, seed=1).variant(seeds[2], 1)
    assert len(load_generated(tmp_path)) == len(rows)


# --- cross-check ------------------------------------------------------------------------------------

DESCRIPTION = "Aniline (1.0 g, 10.7 mmol) in THF (10 mL) was stirred for 2 h at 25 °C to give the amide (1.2 g, 80%)."


@pytest.mark.parametrize(
    ("actions", "reaction", "failed_check", "reason"),
    [
        ("ADD Aniline (1.0 g); WHISK for 2 h.", "", "parse", "parse:"),
        ("ADD Aniline (1.0 g, 10.7 mmol); ADD DCM (10 mL).", "", "compounds_in_description", "DCM"),
        ("ADD Aniline (2.0 g, 10.7 mmol); ADD THF (10 mL).", "", "quantities_agree", "Aniline (2.0 g)"),
        ("ADD Aniline (1.0 g); STIR for 2 h at 25 °C.", "Nc1ccccc1>>CC(=O)Nc1ccccc1", "product_yielded", "YIELD"),
    ],
)
def test_crosscheck_names_what_disagrees(actions, reaction, failed_check, reason):
    verdict = crosscheck(actions, DESCRIPTION, reaction)
    assert not verdict["passed"] and verdict["checks"][failed_check] is False
    assert any(reason in text for text in verdict["reasons"])


def test_crosscheck_passes_a_consistent_triple():
    actions = "ADD Aniline (1.0 g, 10.7 mmol); ADD THF (10 mL); STIR for 2 h at 25 °C; YIELD amide (1.2 g, 80%)."
    roles = {"reactants": [{"name": "aniline", "smiles": "Nc1ccccc1"}]}
    verdict = crosscheck(actions, DESCRIPTION, "Nc1ccccc1>>CC(=O)Nc1ccccc1", roles)
    checks = ["parse", "valid", "compounds_in_description", "quantities_agree", "product_yielded", "amounts_agree"]
    checks.append("reactants_in_description")
    assert verdict == {"passed": True, "checks": dict.fromkeys(checks, True), "reasons": []}
    missing = crosscheck(actions, DESCRIPTION, roles={"reactants": [{"name": "acetic anhydride", "smiles": "x"}]})
    assert missing["reasons"] == ["reactant not in description: acetic anhydride"]


# --- the chain through a TGI-protocol server ----------------------------------------------------------


def chain_runner(url: str, **settings) -> GenerationRunner:
    backend = EndpointBackend(url, api="generate", backoff=0.001, max_backoff=0.01)
    return GenerationRunner(backend, RunSettings(sampling={"max_new_tokens": 400}, **settings), examples=EXAMPLES)


def test_chain_end_to_end_through_a_flaky_tgi_server(tgi_server, tmp_path):
    broken = REACTIONS[0]["description"]
    server = tgi_server(example_responder({broken: "STIR the flask gently"}), faults={"429": 0.15, "drop": 0.1})
    runner = chain_runner(server.url)
    summary = runner.run(REACTIONS, tmp_path, progress=False)
    rows = {row["id"]: row for row in shard_rows(tmp_path)}
    assert summary.done == len(REACTIONS) and not summary.failed and summary.retries > 0
    verdicts = [get_meta(row)["crosscheck"] for row in rows.values()]
    assert summary.crosscheck_failed == sum(not verdict["passed"] for verdict in verdicts) >= 1  # kept, with reasons
    assert set(rows) == {f"{row['id']}/0" for row in REACTIONS}
    for source in REACTIONS:
        row, meta = rows[f"{source['id']}/0"], get_meta(rows[f"{source['id']}/0"])
        assert row["source"] == "generated" and row["reaction_smiles"] == source["reaction_smiles"]
        assert row["description"] == source["description"]  # the few-shot continuation was cut off
        assert meta["prompts"]["d2a"]["sha256"] == load_prompt("d2a-v1").sha256
        assert meta["usage"]["r2d"]["completion_tokens"] > 0 and meta["endpoints"]["d2a"] == server.url
        assert meta["components"] == get_meta(source)["components"]
        if source is REACTIONS[0]:
            assert meta["crosscheck"]["passed"] is False and meta["crosscheck"]["reasons"][0].startswith("parse:")
        else:
            assert meta["crosscheck"]["checks"]["parse"] and meta["crosscheck"]["checks"]["product_yielded"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["runs"][-1]["status"] == "complete" and manifest["rows"] == len(REACTIONS)
    assert manifest["prompts"]["r2d"]["sha256"] == load_prompt("r2d-v1").sha256
    assert len(load_generated(tmp_path)) == len(REACTIONS)


def test_failed_items_are_recorded_skipped_and_retried_on_request(tgi_server, tmp_path):
    server = tgi_server(example_responder(), script=["422"])
    runner = chain_runner(server.url, max_in_flight=1)
    first = runner.run(REACTIONS, tmp_path, progress=False)
    assert first.failed == {"validation": 1} and first.done == len(REACTIONS) - 1
    failure = json.loads(next(tmp_path.glob("failures/*.ndjson")).read_text())
    assert failure["error"]["kind"] == "validation" and failure["error"]["status"] == 422
    requests = sum(server.requests.values())
    again = chain_runner(server.url).run(REACTIONS, tmp_path, progress=False)
    assert (again.done, again.skipped, sum(server.requests.values())) == (0, len(REACTIONS), requests)
    retried = chain_runner(server.url).run(REACTIONS, tmp_path, retry_failed=True, progress=False)
    assert retried.done == 1 and not retried.failed
    ids = [row["id"] for row in shard_rows(tmp_path)]
    assert sorted(ids) == sorted({f"{row['id']}/0" for row in REACTIONS})


def test_single_steps_and_unusable_inputs(tgi_server, tmp_path):
    server = tgi_server(example_responder())
    procedures = [row for row in EXAMPLES if not row["reaction_smiles"]][:5]
    summary = chain_runner(server.url, steps="d2a").run([*procedures, REACTIONS[0]], tmp_path, progress=False)
    # rows are written as they complete, so concurrent requests may finish in any order
    actions_by_id = {row["id"]: row["actions"] for row in shard_rows(tmp_path)}
    assert summary.done == 6
    assert [actions_by_id[f"{row['id']}/0"] for row in procedures] == [row["actions"] for row in procedures]
    rows = shard_rows(tmp_path)
    assert all(get_meta(row)["crosscheck"]["checks"]["parse"] for row in rows)
    assert "r2d" not in get_meta(rows[0])["prompts"]
    described = chain_runner(server.url, steps="r2d").run(procedures[:2], tmp_path / "r2d", progress=False)
    assert described.failed == {"input": 2}  # sentences without a reaction cannot be described


def test_an_empty_answer_is_a_failure_to_retry(tgi_server, tmp_path):
    server = tgi_server(lambda kind, payload: "\n### Procedure\n")
    summary = chain_runner(server.url, steps="d2a").run(EXAMPLES[:2], tmp_path, progress=False)
    assert summary.failed == {"empty": 2} and not list(tmp_path.glob("shards/*.jsonl"))


def test_back_translation_scores_how_much_of_the_text_the_actions_recover(tgi_server, tmp_path):
    procedures = [row for row in EXAMPLES if not row["reaction_smiles"]][:3]
    server = tgi_server(example_responder({procedures[0]["description"]: "ADD benzene (5 mL)."}))
    chain_runner(server.url, steps="d2a", back_translate=True).run(procedures, tmp_path, progress=False)
    rows = {row["id"]: get_meta(row)["crosscheck"]["back_translation"] for row in shard_rows(tmp_path)}
    assert rows[f"{procedures[1]['id']}/0"] == {"text": procedures[1]["description"], "similarity": 1.0}
    assert rows[f"{procedures[0]['id']}/0"]["similarity"] < 0.6  # actions made up: the text is not recovered
    assert get_meta(shard_rows(tmp_path)[0])["prompts"]["a2d"]["sha256"] == load_prompt("a2d-v1").sha256


def test_resume_refuses_other_settings(tgi_server, tmp_path):
    server = tgi_server(example_responder())
    chain_runner(server.url, shots=2).run(REACTIONS[:2], tmp_path, progress=False)
    with pytest.raises(ResumeError, match="settings"):
        chain_runner(server.url, shots=3).run(REACTIONS[:2], tmp_path, progress=False)


def test_resume_refuses_a_changed_action_list(tgi_server, tmp_path, monkeypatch):
    """The D2A prompt lists the grammar's actions: a new action changes the rendered prompt, not its template,
    and the identity a resume checks (and each row's prompt provenance) changes with it."""
    server = tgi_server(example_responder())
    before = chain_runner(server.url, shots=1)
    before.run(REACTIONS[:1], tmp_path, progress=False)
    monkeypatch.setattr(runner_module, "ACTION_NAMES", (*ACTION_NAMES, "NEWACTION"))  # an action added to the grammar
    after = chain_runner(server.url, shots=1)
    values = {"examples": [], "description": "Stir it."}
    assert "NEWACTION" in after.prompts["d2a"].render(**values, **after.fixed_values)
    assert "NEWACTION" not in before.prompts["d2a"].render(**values, **before.fixed_values)
    old, new = before.identity()["prompts"]["d2a"], after.identity()["prompts"]["d2a"]
    assert old["sha256"] == new["sha256"] and old["fixed_values_sha256"] != new["fixed_values_sha256"]
    with pytest.raises(ResumeError, match="prompts"):
        after.run(REACTIONS[:1], tmp_path, progress=False)


def test_a_torn_last_line_is_cut_and_its_row_regenerated(tmp_path):
    seeds = [row for row in EXAMPLES if not row["reaction_smiles"]][:4]
    runner = GenerationRunner(AugmentBackend(seeds), RunSettings(steps="augment"))
    runner.run(seeds, tmp_path, progress=False)
    shard = next(tmp_path.glob("shards/*.jsonl"))
    lines = shard.read_bytes().splitlines(keepends=True)
    shard.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # a kill in the middle of the last write
    assert len(OutputStore(tmp_path).finished_ids()) == 3 and shard.read_bytes() == b"".join(lines[:-1])
    summary = runner.run(seeds, tmp_path, progress=False)
    assert summary.done == 1 and sorted(row["id"] for row in shard_rows(tmp_path)) == sorted(
        f"{row['id']}/0" for row in seeds
    )


def test_run_from_config_defaults_to_augmentation(tmp_path):
    records = tmp_path / "seeds.jsonl"
    write_records([row for row in EXAMPLES if not row["reaction_smiles"]][:6], records)
    summary = run_from_config(
        {"input": str(records), "output_dir": str(tmp_path / "out"), "samples": 2}, progress=False
    )
    assert summary.done == 12 and {row["source"] for row in shard_rows(tmp_path / "out")} == {"augmented"}
    parquet = tmp_path / "seeds.parquet"
    to_dataset(read_inputs(str(records))).to_parquet(parquet)
    assert read_inputs(str(parquet), split="train") == [r for r in read_inputs(str(records)) if r["split"] == "train"]
    with pytest.raises(ConfigError, match=r"sample: unknown key \(did you mean 'samples'\?\)"):
        run_from_config({"input": str(records), "output_dir": str(tmp_path), "sample": 2})


# --- kill and resume ----------------------------------------------------------------------------------


def complete_lines(output_dir) -> list[dict]:
    """Every complete line of the shards; only the very last line of a shard may be torn by a kill."""
    rows = []
    for path in sorted(output_dir.glob("shards/*.jsonl")):
        data = path.read_bytes()
        lines = data.split(b"\n")
        assert all(line for line in lines[:-1]), f"empty line in {path}"
        rows += [json.loads(line) for line in lines[:-1]]
    return rows


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_gives_exactly_the_expected_rows(tgi_server, tmp_path, monkeypatch):
    procedures = [row for row in EXAMPLES if not row["reaction_smiles"]][:50]
    inputs = write_records(procedures, tmp_path / "inputs.jsonl")
    server = tgi_server(example_responder(), latency=0.04)
    output = tmp_path / "out"
    command = [sys.executable, "-m", "chemactor.cli", "generate", "--input", str(inputs), "--output", str(output)]
    command += ["--steps", "d2a", "--endpoint", server.url, "--api", "generate", "--max-concurrency", "4"]
    command += ["--samples", "2"]
    env = {name: value for name, value in os.environ.items() if name != "HF_HUB_OFFLINE"}
    expected = sorted(f"{row['id']}/{k}" for row in procedures for k in range(2))
    rng = random.Random(5)
    for _ in range(3):
        before = len(complete_lines(output))
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(complete_lines(output)) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
        ids = [row["id"] for row in complete_lines(output)]
        assert len(ids) == len(set(ids)) and set(ids) < set(expected)
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "already done" in finished.stdout
    rows = complete_lines(output)
    assert sorted(row["id"] for row in rows) == expected
    assert all(path.read_bytes().endswith(b"\n") for path in output.glob("shards/*.jsonl"))
    assert len(load_generated(output)) == len(expected)
    manifest = json.loads((output / "manifest.json").read_text())
    assert [run["status"] for run in manifest["runs"]] == ["running"] * 3 + ["complete"]  # killed runs say so


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=60), st.lists(st.text(max_size=6), max_size=20), st.integers(1, 8))
def test_id_set_holds_what_was_added_across_merges(loaded, added, merge_at):
    """Ids loaded as keys, then added one by one, a sorted array made (and merged with the ones before) every
    ``merge_at`` additions: membership and size are those of a Python set of the ids."""
    ids = IdSet(np.array([id_key(row_id) for row_id in loaded], dtype=np.int64))
    ids.BUFFER = merge_at
    for row_id in added:
        ids.add(row_id)
    expected = set(loaded) | set(added)
    assert len(ids) == len(expected)
    assert all(row_id in ids for row_id in expected)
    assert not any(f"{row_id}\x00absent" in ids for row_id in expected)
