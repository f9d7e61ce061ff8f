"""Poison rows, poison answers and dead endpoints: each is recorded for its row or stops the run, never faked.

Every endpoint here is a real TGI-protocol server on 127.0.0.1 (``tests/tgi_server.py``) or a port where
nothing listens.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from test_generation import EXAMPLES, REACTIONS, chain_runner, example_responder, shard_rows
from tgi_server import TGIServer

from chemactor.data import make_record, write_records
from chemactor.errors import EXIT_FAILED_ITEMS, EXIT_USER_ERROR, ConfigError, EndpointError, FailedItemsError
from chemactor.generation import GenerationRunner, RunSettings
from chemactor.generation.backends import UNREACHABLE_ATTEMPTS, EndpointBackend


def absent_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def failures(output_dir: Path) -> dict[str, str]:
    """Recorded failures: item id -> kind."""
    return {
        row["id"]: row["error"]["kind"]
        for path in output_dir.glob("failures/*.ndjson")
        for row in map(json.loads, path.read_text().splitlines())
    }


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """``chemactor ARGS`` through the console entry point: (exit code, stdout, stderr)."""
    from chemactor.cli import main

    monkeypatch.setattr("sys.argv", ["chemactor", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    captured = capsys.readouterr()
    return caught.value.code, captured.out, captured.err


@pytest.mark.parametrize("api", ["chat", "generate"])
def test_null_and_choiceless_answers_fail_their_row_only(tgi_server, tmp_path, api):
    # one request at a time, so the script hits known requests: row 1's R2D, row 2's D2A, row 3's D2A
    script = ["null", None, "no_choices", None, "null_text"]
    server = tgi_server(example_responder(), script=script)

    def runner() -> GenerationRunner:
        backend = EndpointBackend(server.url, api=api, max_retries=0)
        return GenerationRunner(backend, RunSettings(max_in_flight=1, sampling={"max_new_tokens": 400}), EXAMPLES)

    summary = runner().run(REACTIONS, tmp_path, progress=False)
    assert summary.done == len(REACTIONS) - 3 and sum(summary.failed.values()) == 3
    kinds = failures(tmp_path)
    assert kinds == {f"{row['id']}/0": "garbage" for row in REACTIONS[:3]}  # null body, no choices, null text
    retried = runner().run(REACTIONS, tmp_path, retry_failed=True, progress=False)
    assert retried.done == 3 and not retried.failed
    assert len(shard_rows(tmp_path)) == len(REACTIONS)


def test_invalid_reactions_fail_their_row_without_a_request(tgi_server, tmp_path):
    server = tgi_server(example_responder())
    poison = [  # (a single molecule is a target the chain describes, not a poison row)
        make_record(id="pentavalent", source="test", reaction_smiles="CC(C)(C)(C)(C)C>>CC"),
        make_record(id="not-smiles", source="test", reaction_smiles="C1CC(>>X(("),
    ]
    summary = chain_runner(server.url).run([poison[0], *REACTIONS, poison[1]], tmp_path, progress=False)
    assert summary.failed == {"invalid_smiles": 2} and summary.done == len(REACTIONS)
    assert failures(tmp_path) == {"pentavalent/0": "invalid_smiles", "not-smiles/0": "invalid_smiles"}
    assert sum(server.requests.values()) == 2 * len(REACTIONS)  # nothing was asked for the poison rows
    again = chain_runner(server.url).run([poison[0], *REACTIONS, poison[1]], tmp_path, progress=False)
    assert (again.done, again.skipped) == (0, len(REACTIONS) + 2)


def test_an_unreachable_endpoint_stops_the_run_and_records_nothing(tgi_server, tmp_path):
    port = absent_port()  # tgi_server only lifts offline mode here; the server comes up later
    runner = chain_runner(f"http://127.0.0.1:{port}", max_in_flight=4)
    with pytest.raises(EndpointError, match=f"127.0.0.1:{port} cannot be reached"):
        runner.run(REACTIONS, tmp_path, progress=False)
    assert not failures(tmp_path) and not shard_rows(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["runs"][-1]["status"] == "stopped: endpoint unreachable"
    assert runner.backend.stats["failed:connection"] <= UNREACHABLE_ATTEMPTS

    # back up on the same port: the rerun does everything, no --retry-failed needed
    with TGIServer(example_responder(), port=port) as server:
        summary = chain_runner(server.url).run(REACTIONS, tmp_path, progress=False)
    assert (summary.done, summary.skipped, dict(summary.failed)) == (len(REACTIONS), 0, {})


def test_a_folder_without_rows_takes_new_settings(tgi_server, tmp_path):
    server = tgi_server(example_responder(), faults={"422": 1.0})
    first = chain_runner(server.url, shots=2).run(REACTIONS[:2], tmp_path, progress=False)
    assert first.failed == {"validation": 2} and not first.done
    server.faults = {}
    second = chain_runner(server.url, shots=1).run(REACTIONS[:2], tmp_path, progress=False)
    assert (second.done, second.skipped) == (2, 0)  # the failures of the other settings do not count
    assert len(list(tmp_path.glob("failures-superseded-*/*.ndjson"))) == 1  # kept aside, not deleted


def test_generate_recipe_is_checked_before_any_work(tmp_path, monkeypatch, capsys):
    inputs = tmp_path / "seeds.jsonl"
    write_records([row for row in EXAMPLES if not row["reaction_smiles"]][:4], inputs)
    recipe = tmp_path / "generate.yaml"
    base = {"input": str(inputs), "output_dir": str(tmp_path / "out"), "backend": "augment"}
    for change, message in [
        ({"sampling": {"temprature": 0.7}}, "sampling.temprature: unknown key (did you mean 'temperature'?)"),
        ({"samples": "ten"}, "samples: expected an integer, got the string 'ten'"),
        ({"split": "dev"}, "split: the string 'dev' is not one of train, validation, test"),
        ({"input": "exampels"}, "input: 'exampels' is neither a source"),
    ]:
        recipe.write_text(yaml.safe_dump({**base, **change}), encoding="utf-8")
        code, _, err = run_cli(["generate", "--config", str(recipe)], monkeypatch, capsys)
        assert code == EXIT_USER_ERROR and err.startswith(f"error: {recipe}: {message}") and err.count("\n") == 1
        assert not (tmp_path / "out").exists()
    recipe.write_text(yaml.safe_dump({**base, "limit": "3", "samples": 2}), encoding="utf-8")
    code, out, _ = run_cli(["generate", "--config", str(recipe)], monkeypatch, capsys)
    assert code == 0 and "6 rows written" in out  # "3" is read as the number 3


def test_generate_with_failed_items_exits_3_with_counts(tgi_server, tmp_path, monkeypatch, capsys):
    server = tgi_server(example_responder(), script=["422"])
    inputs = tmp_path / "reactions.jsonl"
    write_records(REACTIONS[:3], inputs)
    args = ["generate", "--input", str(inputs), "-o", str(tmp_path / "out"), "--endpoints", server.url]
    code, out, err = run_cli([*args, "--max-concurrency", "1"], monkeypatch, capsys)
    assert code == EXIT_FAILED_ITEMS and "2 rows written" in out
    assert err.endswith("\nerror: 1 items failed (validation 1); rerun with --retry-failed\n")
    code, out, _ = run_cli([*args, "--retry-failed"], monkeypatch, capsys)
    assert code == 0 and "1 rows written" in out


def test_model_config_overrides_are_checked_against_the_model_config(tmp_path):
    from chemactor.training import ScriptArguments

    with pytest.raises(ConfigError, match=r"num_hiden_layers: not a LlamaConfig field \(did you mean 'num_hidden_l"):
        ScriptArguments(model_config_overrides={"num_hiden_layers": 6})
    assert ScriptArguments(model_config_overrides='{"num_hidden_layers": 6}').model_config_overrides == {
        "num_hidden_layers": 6
    }


# --- evaluation, extraction and the pipeline over failing endpoints -------------------------------------


def test_evaluation_never_scores_answers_that_did_not_come(tgi_server, tmp_path):
    from chemactor.evaluation import completer_predictors, evaluate_model
    from chemactor.examples import load_examples
    from chemactor.inference import EndpointCompleter

    server = tgi_server(faults={"null": 1.0})  # every answer is a 200 whose body is null
    completer = EndpointCompleter(EndpointBackend(server.url, api="generate", max_retries=0))
    with pytest.raises(FailedItemsError, match=r"14 of 14 examples got no answer \(garbage 14\); no score computed"):
        evaluate_model(completer_predictors(completer, server.url), load_examples(), tmp_path, circle_rounds=1)
    failed = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert {row["task"] for row in failed} == {"d2a", "r2d"} and {row["kind"] for row in failed} == {"garbage"}
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "predictions.jsonl").exists()


def test_evaluate_with_an_unreachable_endpoint_exits_1_and_writes_no_report(tgi_server, tmp_path, monkeypatch, capsys):
    url = f"http://127.0.0.1:{absent_port()}"
    code, _, err = run_cli(["evaluate", "--model", url, "-o", str(tmp_path / "eval")], monkeypatch, capsys)
    assert code == EXIT_USER_ERROR and f"error: endpoint {url} cannot be reached" in err
    assert not (tmp_path / "eval" / "report.json").exists()


def test_extract_and_describe_exit_3_with_counts_and_resume_after_an_outage(tgi_server, tmp_path, monkeypatch, capsys):
    port = absent_port()
    texts = tmp_path / "procedures.txt"
    texts.write_text("The mixture was stirred.\nWater was added.\n", encoding="utf-8")
    args = ["extract", "--endpoint", f"http://127.0.0.1:{port}", "--api", "generate", "--input", str(texts)]
    out_file = tmp_path / "actions.jsonl"
    code, _, err = run_cli([*args, "-o", str(out_file)], monkeypatch, capsys)
    assert code == EXIT_USER_ERROR and "cannot be reached" in err
    assert not out_file.exists() or not out_file.read_text()  # nothing recorded as a result

    with TGIServer(lambda kind, payload: "STIR.", port=port):
        code, out, _ = run_cli([*args, "-o", str(out_file)], monkeypatch, capsys)
    assert code == 0 and "2 rows written" in out
    assert [json.loads(line)["actions"] for line in out_file.read_text().splitlines()] == ["STIR.", "STIR."]

    server = tgi_server(faults={"no_choices": 1.0})
    code, out, err = run_cli(["extract", "--endpoint", server.url, "Water was added."], monkeypatch, capsys)
    assert code == EXIT_FAILED_ITEMS and err.endswith(
        "error: 1 inputs failed (garbage 1); each such row says why in 'failure' and its errors\n"
    )
    assert json.loads(out)["failure"] == "garbage"

    server.faults = {}
    code, out, err = run_cli(["describe", "--endpoint", server.url, "C1CC(>>X((", "CCO>>CC=O"], monkeypatch, capsys)
    assert code == EXIT_FAILED_ITEMS and "1 inputs failed (invalid_smiles 1)" in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["failure"] for row in rows] == ["invalid_smiles", None] and rows[1]["valid"]


def test_a_pipeline_whose_generation_failed_is_not_marked_done_and_reruns(tgi_server, tmp_path, monkeypatch, capsys):
    from chemactor.pipeline import read_stage, stage_dir

    server = tgi_server(example_responder(), faults={"422": 1.0})
    recipe = tmp_path / "recipe.yaml"
    generation = {"backend": "endpoint", "endpoints": [server.url], "api": "generate", "steps": "d2a", "samples": 1}
    raw = {"output_dir": str(tmp_path / "run"), "seeds": {"sources": ["examples"]}, "generation": generation}
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    code, _, err = run_cli(["pipeline", str(recipe), "--until", "selection"], monkeypatch, capsys)
    assert code == EXIT_FAILED_ITEMS and "generation left 0 rows and 56 failed items (validation 56)" in err
    stage = read_stage(stage_dir(tmp_path / "run", "generation"))
    assert stage["status"] == "incomplete" and stage["summary"]["failed"] == {"validation": 56}
    assert not stage_dir(tmp_path / "run", "selection").exists()

    server.faults = {}  # the endpoint is fixed: the rerun retries the failed items
    code, out, _ = run_cli(["pipeline", str(recipe), "--until", "generation"], monkeypatch, capsys)
    assert code == 0 and "[seeds] unchanged" in out
    stage = read_stage(stage_dir(tmp_path / "run", "generation"))
    assert stage["status"] == "done" and stage["summary"]["rows"] == 56 and not stage["summary"]["failed"]


def test_train_names_a_misspelled_model_config_field_before_any_work(tmp_path, monkeypatch, capsys):
    recipe_path = Path(__file__).resolve().parents[1] / "recipes" / "sft_cpu_tiny.yaml"
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    recipe.update(output_dir=str(tmp_path / "model"), model_config_overrides={"num_hiden_layers": 6})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    code, _, err = run_cli(["train", str(path)], monkeypatch, capsys)
    assert code == EXIT_USER_ERROR
    assert err == (
        f"error: {path}: model_config_overrides.num_hiden_layers: not a LlamaConfig field "
        "(did you mean 'num_hidden_layers'?)\n"
    )
    recipe.update(model_config_overrides={"num_hidden_layers": 1}, lerning_rate=0.1)
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    code, _, err = run_cli(["train", str(path)], monkeypatch, capsys)
    assert (
        code == EXIT_USER_ERROR and err == f"error: {path}: lerning_rate: unknown key (did you mean 'learning_rate'?)\n"
    )
    assert not (tmp_path / "model").exists()


def test_overrides_that_would_be_ignored_are_refused_and_training_is_checked_even_before_it_runs(tmp_path):
    from chemactor.pipeline import PipelineConfig, PipelineConfigError, run_pipeline
    from chemactor.training import parse_recipe_dict

    with pytest.raises(ConfigError, match="model_config_overrides: shapes the model trained from scratch"):
        parse_recipe_dict(
            {
                "output_dir": str(tmp_path),
                "use_cpu": True,
                "model_name_or_path": "org/model",
                "model_config_overrides": {"hidden_size": 8},
            }
        )
    raw = {"output_dir": str(tmp_path / "run"), "training": {"model_config_overrides": {"num_hiden_layers": 6}}}
    with pytest.raises(PipelineConfigError, match=r"training\.model_config_overrides\.num_hiden_layers"):
        run_pipeline(PipelineConfig.from_mapping(raw), until="seeds", log=lambda _: None)
    assert not (tmp_path / "run").exists()


def test_a_template_that_fails_on_one_row_fails_that_row_only(tgi_server, tmp_path):
    from chemactor.prompts import load_prompt, prompt_names

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in prompt_names():
        (prompts / f"{name}.jinja").write_text(load_prompt(name).text, encoding="utf-8")
    poisoned = REACTIONS[0]["reaction_smiles"]
    r2d = prompts / "r2d-v1.jinja"  # a user's template that only some rows trip (undefined is strict)
    r2d.write_text(
        f"{{% if reaction_smiles == {poisoned!r} %}}{{{{ no_such_value }}}}{{% endif %}}" + r2d.read_text("utf-8"),
        encoding="utf-8",
    )
    server = tgi_server(example_responder())
    summary = chain_runner(server.url, prompts_dir=str(prompts)).run(REACTIONS, tmp_path / "out", progress=False)
    assert summary.failed == {"template": 1} and summary.done == len(REACTIONS) - 1
    assert failures(tmp_path / "out") == {f"{REACTIONS[0]['id']}/0": "template"}
