"""The SFT recipe: data mixing, task views, training with evaluation, resume, save, model card and push."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from typer.testing import CliRunner

from chemactor.cli import app
from chemactor.data import get_meta, make_record, prompt_for, task_view, to_dataset, write_records
from chemactor.errors import ConfigError
from chemactor.hub import model_facts, push_model, render_model_card
from chemactor.inference import ActionExtractor
from chemactor.training import (
    build_tiny_model,
    build_trainer,
    load_training_data,
    parse_args,
    task_views,
    train_and_save,
    train_tokenizer,
)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY = str(RECIPES / "sft_cpu_tiny.yaml")


def recipe_argv(**overrides: object) -> list[str]:
    """The tiny recipe with ``--name value`` overrides."""
    return [TINY, *(item for name, value in overrides.items() for item in (f"--{name}", str(value)))]


class Interrupted(Exception):
    """Stands in for a killed job."""


class InterruptAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupted(f"interrupted at step {self.step}")


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    """A tiny recipe run that is interrupted after its first checkpoint and then rerun to the end."""
    output = tmp_path_factory.mktemp("sft")
    argv = recipe_argv(
        data_dir=shared_data,
        seed_sources="paragraph2actions",
        output_dir=output,
        max_steps=6,
        save_steps=2,
        eval_steps=3,
        logging_steps=1,
        eval_generation_samples=4,
        eval_max_new_tokens=16,
        disable_tqdm="true",
    )
    args, training_args, model_args = parse_args(argv)
    data = load_training_data(args, training_args.seed)
    trainer = build_trainer(args, training_args, model_args, data.records)
    trainer.add_callback(InterruptAt(3))
    with pytest.raises(Interrupted):
        train_and_save(trainer, args, model_args, data)
    assert sorted(path.name for path in output.glob("checkpoint-*")) == ["checkpoint-2"]

    # Mark the checkpoint's state: only a run that resumes from it carries the mark on to the end.
    state_file = output / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"].append({"step": 2, "mark": "checkpoint-2"})
    state_file.write_text(json.dumps(state))

    result = CliRunner().invoke(app, ["train", *argv])  # the same command again, from the command line
    assert result.exit_code == 0, result.output
    return output, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_rerun_resumes_from_the_last_checkpoint(trained):
    output, _ = trained
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 6 and (output / "checkpoint-6").is_dir()
    assert {"step": 2, "mark": "checkpoint-2"} in state["log_history"]  # continued from checkpoint-2's state
    assert [row["step"] for row in state["log_history"] if "loss" in row] == [1, 2, 3, 4, 5, 6]  # none repeated


@pytest.mark.slow
def test_evaluation_generates_and_reports_action_metrics(trained):
    output, metrics = trained
    assert 0.0 <= metrics["eval_full_sentence_accuracy"] <= 1.0
    assert metrics["eval_loss"] > 0
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    assert [row["step"] for row in history if "eval_levenshtein_similarity" in row] == [3, 6]


@pytest.mark.slow
def test_saved_model_loads_alone_and_carries_a_card(trained):
    output, metrics = trained
    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForCausalLM.from_pretrained(output)
    assert model.config.vocab_size == len(tokenizer)
    card = ModelCard.load(output / "README.md")
    assert card.data.license == "mit" and card.data.library_name == "transformers"
    assert "`paragraph2actions` | mit | 80 | 10 | 10" in card.text
    assert f"{metrics['eval_loss']:.4g}" in card.text
    assert "Trained from scratch" in card.text


@pytest.mark.slow
def test_push_then_from_pretrained_by_repo_id(trained, hub_env, hub_server):
    output, _ = trained
    push_model(output, "tester/chemactor-tiny", token=hub_server.token)
    files = HfApi().list_repo_files("tester/chemactor-tiny")
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(files)
    assert not any(name.startswith("checkpoint-") for name in files)
    assert (output / "trainer_state.json").exists() and (output / "training_args.bin").exists()
    assert not {"trainer_state.json", "training_args.bin", "all_results.json", "train_results.json"} & set(files)

    local, remote = (
        AutoModelForCausalLM.from_pretrained(output),
        AutoModelForCausalLM.from_pretrained("tester/chemactor-tiny"),
    )
    batch = AutoTokenizer.from_pretrained("tester/chemactor-tiny")(
        [prompt_for("d2a", "Add water.")], return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.equal(local(**batch).logits, remote(**batch).logits)
    [extraction] = ActionExtractor.from_pretrained("tester/chemactor-tiny", max_new_tokens=4).extract(
        ["Add water."], progress=False
    )
    assert extraction.description == "Add water."


def test_generated_rows_are_mixed_in_at_the_recipe_ratio(shared_data, tmp_path):
    generated = [
        make_record(
            id=f"gen-{index}",
            source="generated",
            description=f"The solution was stirred for {index + 1} h.",
            actions=f"STIR for {index + 1} h.",
            meta={"divergence": {"divergence": index / 10}},
        )
        for index in range(10)
    ]
    write_records(generated, tmp_path / "selected" / "data.jsonl")
    args, training_args, _ = parse_args(
        recipe_argv(data_dir=shared_data, seed_sources="paragraph2actions", generated_dir=tmp_path / "selected")
    )
    data = load_training_data(args, training_args.seed)
    sources = data.records["train"]["source"]
    assert sources.count("generated") == 9 and sources.count("paragraph2actions") == 3  # 1:3, as far as 10 go
    assert len(data.records["validation"]) == 10  # evaluation stays on real data
    assert data.generated == {
        "path": str(tmp_path / "selected"),
        "available": 10,
        "used": 9,
        "seeds_available": 80,
        "ratio": "1:3",
        "max_divergence": 0.9,
    }
    assert [source["name"] for source in data.sources] == ["paragraph2actions"]
    assert get_meta(data.records["train"][0]) is not None


def test_task_views_come_from_the_record_schema():
    records = to_dataset(
        [
            make_record(id="d", source="paragraph2actions", description="Add water.", actions="ADD water."),
            make_record(id="r", source="ord", reaction_smiles="CCO>>CC=O", description="Ethanol was oxidized."),
            make_record(
                id="a",
                source="smiles2actions",
                reaction_smiles="CCO>>CC=O",
                actions="ADD $1$ ; STIR",
                meta={"actions_style": "placeholder"},
            ),
        ]
    )
    views = task_views(records, ["d2a", "r2d", "r2a"])
    assert views.to_list() == [
        task_view(records[0], "d2a"),
        task_view(records[1], "r2d"),
        task_view(records[2], "r2a"),
    ]
    assert task_views(records, ["d2a"]).num_rows == 1


def test_recipe_then_command_line_overrides():
    args, training_args, model_args = parse_args(
        [TINY, "--max_steps", "3", "--model_config_overrides", '{"hidden_size": 32}', "--tasks", "d2a"]
    )
    assert training_args.max_steps == 3  # the command line wins
    assert training_args.learning_rate == 3e-3 and training_args.use_cpu  # the recipe fills the rest
    assert args.model_config_overrides == {"hidden_size": 32} and args.tasks == ["d2a"]
    assert model_args.model_name_or_path is None
    with pytest.raises(ValueError, match=r"unknown task.*d2x"):
        parse_args([TINY, "--tasks", "d2a", "d2x"])
    with pytest.raises(ConfigError, match="model_config_overrides: not JSON"):
        parse_args([TINY, "--model_config_overrides", "{hidden_size: 32}"])
    with pytest.raises(ConfigError, match=r"model_config_overrides\.num_hiden_layers: not a LlamaConfig field"):
        parse_args([TINY, "--model_config_overrides", '{"num_hiden_layers": 6}'])
    with pytest.raises(ValueError, match="ratio must look like '1:3'"):
        parse_args([TINY, "--mix_ratio", "1/3"])


def test_chat_template_tokenizers_train_on_conversations(shared_data, tmp_path):
    args, training_args, model_args = parse_args(recipe_argv(output_dir=tmp_path, eval_strategy="no", tasks="d2a"))
    records = datasets.DatasetDict(
        train=to_dataset(
            [make_record(id="d", source="paragraph2actions", description="Add water.", actions="ADD water.")]
        )
    )
    plain = build_trainer(args, training_args, model_args, records)
    plain.processing_class.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    plain.processing_class.save_pretrained(tmp_path)  # the next build reuses the tokenizer saved there
    chat = build_trainer(args, training_args, model_args, records)
    row = chat.train_dataset[0]
    text = chat.processing_class.decode(row["input_ids"])
    assert text.startswith("<|user|>") and "<|assistant|>ADD water." in text
    learned = [label for label in row["labels"] if label != -100]  # completion-only loss
    assert chat.processing_class.decode(learned).startswith("ADD water.")
    assert "Add water" not in chat.processing_class.decode(learned)


def model_card(model, **facts):
    return render_model_card(model_facts(model, **facts))


def test_model_card_of_a_fine_tuned_model_with_generated_data():
    _, training_args, _ = parse_args([TINY])
    model = build_tiny_model(train_tokenizer(["ADD water.", "STIR for 2 h."], vocab_size=300))
    generated = {"path": "sel/selected", "available": 10, "used": 9, "seeds_available": 80, "ratio": "1:3"}
    sources = [
        {"name": "paragraph2actions", "license": "mit", "homepage": "", "rows": {"train": 80}},
        {"name": "ord", "license": "cc-by-sa-4.0", "homepage": "", "rows": {"train": 12}},
    ]
    card = model_card(
        model,
        base_model="org/base-7b",
        sources=sources,
        generated=generated,
        tasks=["d2a", "r2d"],
        metrics={"eval_loss": 0.5},
        training_args=training_args,
    )
    assert card.data.license == "cc-by-sa-4.0"  # share-alike data: the conservative license
    assert card.data.base_model == "org/base-7b" and "Fine-tuned from [`org/base-7b`]" in card.text
    assert "9 of 10 selected rows from `sel/selected`" in card.text and "at 1:3 (seeds:generated)" in card.text
    assert "divergence of" not in card.text  # no selection scores, no claim about them
    card = model_card(
        model,
        base_model=None,
        sources=sources,
        generated={**generated, "max_divergence": None},
        tasks=["d2a"],
        metrics={},
        training_args=training_args,
    )
    assert "divergence of" not in card.text
    card = model_card(
        model,
        base_model=None,
        sources=sources[:1],
        generated={**generated, "max_divergence": 0.5},
        tasks=["d2a"],
        metrics={},
        training_args=training_args,
    )
    assert card.data.license == "mit" and "up to a divergence of 0.500." in card.text
