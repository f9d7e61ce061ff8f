"""Publishing a model and its data properly, and using both from the Hub (a Hub-protocol server on 127.0.0.1).

A model repo gets config, weights, tokenizer, card and evaluation report, never the trainer's state; the
card links the dataset and carries a model-index that huggingface_hub parses back; a published dataset (or
a local export) feeds the SFT recipe and the pipeline by ``load_dataset`` spec.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi, ModelCard

from chemactor.builders import load_generated, load_seeds
from chemactor.data import make_record, to_dataset
from chemactor.errors import InputError
from chemactor.hub import (
    EVALUATED_TASK,
    EVALUATION_DIR,
    eval_results,
    export_dataset,
    model_facts,
    push_dataset,
    push_model,
    render_model_card,
)
from chemactor.pipeline import PipelineConfig, run_pipeline
from chemactor.training import build_tiny_model, main, parse_args, train_tokenizer

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY = str(RECIPES / "sft_cpu_tiny.yaml")
REPORT = {
    "d2a": {"full_sentence_accuracy": 0.25, "partial_accuracy_0.75": 0.5, "modified_bleu": 0.61, "validity": 0.9},
    "r2d": {"bleu": 12.3456, "rougeL": 0.33},
    "circle": {"circle_score": 0.4, "rounds": 2},
}
TRAINER_LEFTOVERS = (
    "training_args.bin",
    "trainer_state.json",
    "all_results.json",
    "train_results.json",
    "eval_results.json",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
)


@pytest.fixture
def trained_folder(tmp_path: Path):
    """A saved tiny model and tokenizer with what a Trainer leaves beside them (states, a checkpoint, logs)."""
    tokenizer = train_tokenizer(["ADD water.", "STIR for 2 h.", "The mixture was stirred."], vocab_size=300)
    sizes = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    model = build_tiny_model(tokenizer, **sizes, num_key_value_heads=2)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    for name in TRAINER_LEFTOVERS:
        (folder / name).write_bytes(b"state")
    model.save_pretrained(folder / "checkpoint-2")
    (folder / "checkpoint-2" / "optimizer.pt").write_bytes(b"state")
    (folder / "runs").mkdir()
    (folder / "runs" / "events.out").write_bytes(b"log")
    return folder, model


def _evaluation_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "evaluation"
    (folder / "plots").mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(REPORT), encoding="utf-8")
    (folder / "report.md").write_text("# Evaluation\n", encoding="utf-8")
    (folder / "predictions.jsonl").write_text("{}\n", encoding="utf-8")
    (folder / "plots" / "circle_review.png").write_bytes(b"\x89PNG")
    (folder / "stage.json").write_text("{}", encoding="utf-8")
    return folder


def test_model_repo_holds_the_model_card_and_report_only_and_the_card_parses_back(
    trained_folder, hub_env, tmp_path: Path
) -> None:
    folder, model = trained_folder
    _, training_args, _ = parse_args([TINY])
    facts = model_facts(
        model,
        base_model=None,
        sources=[{"name": "examples", "license": "MIT", "homepage": "", "rows": {"train": 56, "test": 12}}],
        generated={"path": "sel", "available": 40, "used": 40, "seeds_available": 56, "ratio": "1:3"},
        tasks=["d2a", "a2d"],
        metrics={"train_loss": 2.5},
        training_args=training_args,
        train_rows=96,
    )
    evaluation = eval_results(
        REPORT, dataset_id="tester/cards-data", dataset_name="ChemActor seeds", dataset_config="seeds", split="test"
    )
    card = render_model_card(
        facts, repo_id="tester/cards-model", dataset_repo="tester/cards-data", evaluation=evaluation
    )
    push_model(folder, "tester/cards-model", card=card, evaluation_dir=_evaluation_folder(tmp_path))

    files = set(HfApi().list_repo_files("tester/cards-model"))
    model_files = {name for name in files if not name.startswith(f"{EVALUATION_DIR}/")} - {".gitattributes"}
    assert model_files == {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
    }
    report_files = ("report.md", "report.json", "predictions.jsonl", "plots/circle_review.png")
    assert files - model_files - {".gitattributes"} == {f"{EVALUATION_DIR}/{name}" for name in report_files}

    remote = ModelCard.load("tester/cards-model")
    assert remote.data.datasets == ["tester/cards-data"]
    assert remote.data.license == "mit" and remote.data.model_name == "cards-model"
    parsed = {result.metric_type: result.metric_value for result in remote.data.eval_results}
    assert parsed == {
        "d2a_full_sentence_accuracy": 0.25,
        "d2a_partial_accuracy_0.75": 0.5,
        "d2a_modified_bleu": 0.61,
        "d2a_validity": 0.9,
        "r2d_bleu": 12.3456,
        "r2d_rougeL": 0.33,
        "circle_score": 0.4,
    }
    assert {result.task_name for result in remote.data.eval_results} == {EVALUATED_TASK}
    assert {(r.dataset_type, r.dataset_config, r.dataset_split) for r in remote.data.eval_results} == {
        ("tester/cards-data", "seeds", "test")
    }
    text = remote.text
    assert "chemactor extract --model tester/cards-model" in text
    assert "(https://huggingface.co/datasets/tester/cards-data)" in text and "under `reproduce/`" in text
    assert "96 training records in all" in text and "40 of 40 selected rows" in text
    assert f"[`{EVALUATION_DIR}/report.md`]({EVALUATION_DIR}/report.md)" in text

    # the card's transformers-only snippet runs as written against the pushed repo
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "transformers" in block)
    exec(compile(snippet.replace("max_new_tokens=128", "max_new_tokens=4"), "card-snippet", "exec"), {})


def test_push_refuses_a_folder_without_weights(tmp_path: Path, hub_env) -> None:
    from chemactor.hub import ExportError

    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ExportError, match="no model weights"):
        push_model(tmp_path, "tester/empty")


def _generated_rows(seeds: datasets.DatasetDict) -> datasets.Dataset:
    """Variants of the seed train pairs (an extra washing step), as generation would write them."""
    return to_dataset(
        make_record(
            id=f"gen/{row['id']}",
            source="augmented",
            description=row["description"] + " The solid was washed with water.",
            actions=row["actions"].rstrip(".") + "; WASH with water.",
            meta={"divergence": {"divergence": 0.1}},
        )
        for row in seeds["train"]
        if row["description"] and row["actions"]
    )


@pytest.fixture
def published_data(hub_env, tmp_path: Path):
    """The example seeds and some generated rows exported (with a reproduction file) and pushed."""
    seeds = load_seeds("examples")
    generated = _generated_rows(seeds)
    folder = export_dataset(
        {"seeds": seeds, "selected": datasets.DatasetDict({"train": generated})},
        tmp_path / "export",
        reproduction={"pipeline.yaml": b"seed: 7\n"},
    )
    push_dataset(folder, "tester/published-data")
    return folder, seeds, generated


def test_seeds_and_generated_rows_load_by_spec_from_the_hub_and_from_an_export(published_data) -> None:
    folder, seeds, generated = published_data
    assert (folder / "reproduce" / "pipeline.yaml").read_text() == "seed: 7\n"
    assert "[`reproduce/pipeline.yaml`](reproduce/pipeline.yaml)" in (folder / "README.md").read_text()
    for spec in ("tester/published-data:seeds", f"{folder}:seeds"):
        loaded = load_seeds(spec)
        assert {split: loaded[split]["id"] for split in loaded} == {split: seeds[split]["id"] for split in seeds}
    for spec in ("tester/published-data:selected", f"{folder}:selected"):
        assert load_generated(spec)["id"] == generated["id"]
    with pytest.raises(InputError, match="load_dataset\\('tester/published-data', 'nope'\\) failed"):
        load_seeds("tester/published-data:nope")
    with pytest.raises(InputError, match="load_dataset\\('tester/absent', 'seeds'\\) failed"):
        load_seeds("tester/absent:seeds")


@pytest.mark.slow
def test_tiny_recipe_trains_from_a_published_dataset(published_data, tmp_path: Path) -> None:
    _, seeds, generated = published_data
    output = tmp_path / "sft"
    argv = [TINY, "--seed_sources", "tester/published-data:seeds", "--generated_dir", "tester/published-data:selected"]
    argv += ["--output_dir", str(output), "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no"]
    argv += ["--tokenizer_vocab_size", "300", "--disable_tqdm", "true", "--report_to", "none"]
    main(argv)
    facts = json.loads((output / "training_facts.json").read_text(encoding="utf-8"))
    [source] = facts["sources"]
    assert source["name"] == "tester/published-data:seeds"
    assert source["rows"] == {split: len(rows) for split, rows in seeds.items()}
    assert facts["generated"]["path"] == "tester/published-data:selected"
    assert facts["generated"]["available"] == len(generated)
    assert "`tester/published-data:seeds`" in (output / "README.md").read_text(encoding="utf-8")


def test_pipeline_takes_seeds_and_generated_rows_from_a_published_dataset(published_data, tmp_path: Path) -> None:
    _, seeds, generated = published_data
    config = PipelineConfig.from_mapping(
        {
            "output_dir": str(tmp_path / "run"),
            "seeds": {"sources": ["tester/published-data:seeds"]},
            "generation": {"dataset": "tester/published-data:selected"},
            "selection": {"fraction": 1.0},
        }
    )
    results = run_pipeline(config, until="selection", log=lambda _: None)
    by_name = {result.name: result.summary for result in results}
    assert by_name["seeds"]["rows"] == {split: len(rows) for split, rows in seeds.items()}
    assert by_name["generation"] == {
        "backend": "dataset",
        "dataset": "tester/published-data:selected",
        "rows": len(generated),
        "rows_written": len(generated),
    }
    assert by_name["selection"]["pool"] == len(generated)
