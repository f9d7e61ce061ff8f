"""The pipeline: recipe checking, the whole run on a truncated quickstart, skipping, resuming, publishing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from huggingface_hub import ModelCard

from chemactor.pipeline import STAGES, PipelineConfig, PipelineConfigError, read_stage, run_pipeline, stage_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


def _quickstart(output_dir: Path) -> dict:
    """The shipped quickstart recipe, cut down so that training and evaluation take seconds."""
    raw = yaml.safe_load((REPO_ROOT / "recipes" / "quickstart.yaml").read_text(encoding="utf-8"))
    raw["output_dir"] = str(output_dir)
    raw["generation"]["samples"] = 2
    raw["training"].update(
        max_steps=3,
        per_device_train_batch_size=8,
        max_length=256,
        tokenizer_vocab_size=400,
        model_config_overrides={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1},
        logging_steps=1,
        save_strategy="no",
    )
    raw["evaluation"].update(circle_rounds=2, max_new_tokens=12)
    return raw


def test_recipe_mistakes_are_named_before_any_work(tmp_path: Path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("output_dir: out\nseeds: {sources: [examples]}\ntraning: {}\n", encoding="utf-8")
    with pytest.raises(PipelineConfigError, match=r"recipe\.yaml: traning: unknown key \(did you mean 'training'\?\)"):
        PipelineConfig.from_yaml(recipe)

    with pytest.raises(PipelineConfigError, match=r"seeds\.source: unknown key \(did you mean 'sources'\?\)"):
        PipelineConfig.from_mapping({"output_dir": "out", "seeds": {"source": "examples"}})
    with pytest.raises(PipelineConfigError, match=r"training\.output_dir: must not be set"):
        PipelineConfig.from_mapping({"output_dir": "out", "training": {"output_dir": "x"}})
    with pytest.raises(PipelineConfigError, match=r"generation\.input: must not be set"):
        PipelineConfig.from_mapping({"output_dir": "out", "generation": {"input": "x.jsonl"}})

    raw = _quickstart(tmp_path / "out")
    config = PipelineConfig.from_mapping({**raw, "training": {**raw["training"], "learning_rat": 0.1}})
    with pytest.raises(
        PipelineConfigError, match=r"training\.learning_rat: unknown key \(did you mean 'learning_rate'\?\)"
    ):
        run_pipeline(config, log=lambda _: None)
    with pytest.raises(PipelineConfigError, match="unknown stage 'train'"):
        run_pipeline(config, until="train", log=lambda _: None)
    assert not (tmp_path / "out" / "1-seeds").exists()


@pytest.mark.parametrize(
    ("section", "change", "message"),
    [
        ("generation", {"samples": "two"}, r"generation\.samples: expected an integer, got the string 'two'"),
        ("generation", {"backend": "vllm"}, r"generation\.backend: the string 'vllm' is not one of endpoint"),
        (
            "generation",
            {"sampling": {"temprature": 0.7}},
            r"generation\.sampling\.temprature: unknown key \(did you mean 'temperature'\?\)",
        ),
        ("generation", {"backend": "endpoint"}, r"generation\.endpoints: the endpoint backend needs at least one URL"),
        (
            "seeds",
            {"sources": ["exampels"]},
            r"seeds\.sources\[0\]: 'exampels' is not one of .* \(did you mean 'examples'\?\)",
        ),
        ("evaluation", {"split": "dev"}, r"evaluation\.split: the string 'dev' is not one of train, validation, test"),
        ("evaluation", {"metrics": ["papr"]}, r"evaluation\.metrics\[0\]: 'papr' is not one of paper"),
        ("evaluation", {"metrics": "paper"}, r"evaluation\.metrics: expected a list, got the string 'paper'"),
        (
            "selection",
            {"weights": {"lenghts": 1.0}},
            r"selection\.weights\.lenghts: unknown view \(did you mean 'lengths'\?\)",
        ),
        (
            "selection",
            {"selector": "earlier/3-selection/selector", "divergence": "js"},
            r"selection\.divergence: must not be set with selector: a fitted selector brings its own",
        ),
        (
            "training",
            {"model_config_overrides": {"num_hiden_layers": 6}},
            r"training\.model_config_overrides\.num_hiden_layers: not a LlamaConfig field "
            r"\(did you mean 'num_hidden_layers'\?\)",
        ),
        (
            "training",
            {"num_train_epochs": "four"},
            r"training\.num_train_epochs: expected a number, got the string 'four'",
        ),
    ],
)
def test_every_section_is_checked_before_the_first_stage(tmp_path: Path, section, change, message):
    raw = _quickstart(tmp_path / "out")
    raw[section] = {**(raw.get(section) or {}), **change}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(PipelineConfigError, match=message) as caught:
        run_pipeline(PipelineConfig.from_yaml(recipe), log=lambda _: None)
    assert str(caught.value).startswith(str(recipe))
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_numeric_strings_are_read_as_numbers(tmp_path: Path):
    config = PipelineConfig.from_mapping(
        {"output_dir": "out", "generation": {"samples": "3"}, "selection": {"fraction": "0.25"}}
    )
    assert config.options("generation")["samples"] == 3 and config.options("selection")["fraction"] == 0.25


@pytest.mark.slow
def test_quickstart_runs_end_to_end_then_skips_resumes_and_publishes(tmp_path: Path, hub_env):
    output = tmp_path / "run"
    raw = _quickstart(output)
    results = run_pipeline(PipelineConfig.from_mapping(raw), log=lambda _: None)
    assert [(result.name, result.status) for result in results] == [
        *((stage, "ran") for stage in STAGES[:-1]),
        ("publish", "disabled"),
    ]
    by_name = {result.name: result for result in results}
    assert by_name["seeds"].summary["rows"] == {"train": 56, "validation": 12, "test": 12}
    assert by_name["selection"].summary["pool"] == 2 * 56
    assert 0 < by_name["selection"].summary["selected"] <= 56
    assert (output / "4-training" / "model" / "model.safetensors").exists()
    evaluation = json.loads((output / "5-evaluation" / "report.json").read_text(encoding="utf-8"))
    assert evaluation["counts"] == {"d2a": 12, "r2d": 2}
    assert evaluation["circle"]["rounds"] == 2
    for plot in ("circle_review.png", "action_type_f1.png", "selection_divergence.png"):
        assert (output / "5-evaluation" / "plots" / plot).stat().st_size > 1000
    report = (output / "report.md").read_text(encoding="utf-8")
    assert "| training | ran |" in report and "5-evaluation/report.md" in report

    # unchanged: nothing reruns; a changed evaluation option reruns evaluation only
    results = run_pipeline(PipelineConfig.from_mapping(raw), log=lambda _: None)
    assert {result.status for result in results[:-1]} == {"skipped"}
    raw["evaluation"]["circle_rounds"] = 1
    results = run_pipeline(PipelineConfig.from_mapping(raw), until="evaluation", log=lambda _: None)
    assert [result.status for result in results] == ["skipped"] * 4 + ["ran"]
    assert json.loads((output / "5-evaluation" / "report.json").read_text())["circle"]["rounds"] == 1

    # publishing: data and model (with the evaluation report) go to a Hub-protocol server on 127.0.0.1
    raw["publish"] = {"dataset_repo": "chemactor/quickstart-data", "model_repo": "chemactor/quickstart-model"}
    results = run_pipeline(PipelineConfig.from_mapping(raw), log=lambda _: None)
    assert [result.status for result in results] == ["skipped"] * 5 + ["ran"]
    model_files = set(hub_env.repo_files("chemactor/quickstart-model", repo_type="model"))
    assert {"model.safetensors", "tokenizer.json", "README.md", "training_facts.json"} <= model_files
    assert {"evaluation/report.md", "evaluation/report.json", "evaluation/plots/circle_review.png"} <= model_files
    assert (output / "4-training" / "model" / "trainer_state.json").exists()  # left local, never pushed:
    assert not {"trainer_state.json", "training_args.bin", "train_results.json"} & model_files
    card = ModelCard.load("chemactor/quickstart-model")
    assert card.data.datasets == ["chemactor/quickstart-data"]
    scores = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert scores["d2a_full_sentence_accuracy"] == round(evaluation["d2a"]["full_sentence_accuracy"], 4)
    assert {result.dataset_split for result in card.data.eval_results} == {"test"}
    data_files = set(hub_env.repo_files("chemactor/quickstart-data", repo_type="dataset"))
    assert {"README.md", "seeds/train-00000-of-00001.parquet", "selected/train-00000-of-00001.parquet"} <= data_files
    reproduce = {"pipeline.yaml", "generation/manifest.json", "selection/report.md"}
    reproduce |= {f"prompts/{name}-v1.jinja" for name in ("view_d2a", "view_r2d", "view_r2a", "view_a2d")}
    assert {f"reproduce/{name}" for name in reproduce} <= data_files
    recipe = yaml.safe_load(hub_env.repo_files("chemactor/quickstart-data")["reproduce/pipeline.yaml"])
    assert recipe["generation"] == raw["generation"] and "publish" not in recipe

    # a forced stage reruns, and so does everything downstream of it (even when the one before was skipped)
    results = run_pipeline(
        PipelineConfig.from_mapping(raw), force=["generation"], until="selection", log=lambda _: None
    )
    assert [result.status for result in results] == ["skipped", "ran", "ran"]

    # a stage that was interrupted (left "running") is rerun in place, its upstream is not
    marker = stage_dir(output, "selection") / "stage.json"
    marker.write_text(json.dumps({**read_stage(marker.parent), "status": "running"}), encoding="utf-8")
    results = run_pipeline(PipelineConfig.from_mapping(raw), until="selection", log=lambda _: None)
    assert [result.status for result in results] == ["skipped", "skipped", "ran"]


def test_published_reproduction_carries_the_prompt_templates_checked_against_their_hashes(tmp_path: Path):
    """reproduce/prompts/ holds the .jinja files of chemactor.prompts: the generation prompts the manifest names
    (refused when the text changed since it generated the data) and the task views."""
    from chemactor.hub import ExportError
    from chemactor.pipeline import _reproduction_files
    from chemactor.prompts import load_prompt

    mine = tmp_path / "my-prompts"
    mine.mkdir()
    (mine / "d2a-v1.jinja").write_text("Actions for: {{ description }}\n", encoding="utf-8")
    generation, selection = tmp_path / "generation", tmp_path / "selection"
    generation.mkdir()
    selection.mkdir()
    (selection / "report.md").write_text("# report\n", encoding="utf-8")

    def manifest(prompts_dir: Path | None, task: str) -> None:
        prompt = load_prompt(f"{task}-v1", prompts_dir)
        settings = {"prompts_dir": str(prompts_dir) if prompts_dir else None}
        manifest = {"settings": settings, "prompts": {task: prompt.provenance({"action_names": ["ADD"]})}}
        (generation / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    config = PipelineConfig.from_mapping({"output_dir": str(tmp_path / "run")})
    inputs = {"generation": generation, "selection": selection}
    manifest(None, "r2d")
    files = _reproduction_files(config, inputs)
    views = {f"prompts/view_{task}-v1.jinja" for task in ("r2d", "d2a", "r2a", "a2d")}
    assert {name for name in files if name.startswith("prompts/")} == {"prompts/r2d-v1.jinja", *views}
    assert files["prompts/r2d-v1.jinja"] == (REPO_ROOT / "chemactor" / "prompts" / "r2d-v1.jinja").read_bytes()
    assert files["prompts/view_d2a-v1.jinja"] == load_prompt("view_d2a-v1").text.encode("utf-8")

    manifest(mine, "d2a")
    assert _reproduction_files(config, inputs)["prompts/d2a-v1.jinja"] == b"Actions for: {{ description }}\n"
    (mine / "d2a-v1.jinja").write_text("Actions, please: {{ description }}\n", encoding="utf-8")
    with pytest.raises(ExportError, match=r"prompt d2a-v1 \(.*my-prompts\) changed since it generated the data"):
        _reproduction_files(config, inputs)


def test_a_selection_scores_with_the_fitted_selector_an_earlier_run_saved(tmp_path: Path):
    first = _quickstart(tmp_path / "first")
    run_pipeline(PipelineConfig.from_mapping(first), until="selection", log=lambda _: None)
    saved = stage_dir(tmp_path / "first", "selection")
    second = {**_quickstart(tmp_path / "second"), "selection": {"fraction": 0.5, "selector": str(saved / "selector")}}
    results = run_pipeline(PipelineConfig.from_mapping(second), until="selection", log=lambda _: None)
    assert results[-1].summary["reference"] is None  # loaded, not fitted
    scores = [pd.read_parquet(folder / "scores.parquet") for folder in (saved, results[-1].directory)]
    pd.testing.assert_frame_equal(*scores)  # the same pool (same seed), the same scores, flags and selection


def test_cli_names_a_broken_recipe_on_one_line_and_exits_1(tmp_path: Path, capsys, monkeypatch):
    from chemactor.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("output_dir: out\nselection: {fractoin: 0.3}\n", encoding="utf-8")
    monkeypatch.setattr("sys.argv", ["chemactor", "pipeline", str(recipe)])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: {recipe}: selection.fractoin: unknown key (did you mean 'fraction'?)\n"
