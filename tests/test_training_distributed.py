"""Scale-out: a real two-process data-parallel run on CPU (gloo), and the multi-GPU configs, validated."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from transformers import AutoModelForCausalLM

from chemactor.scoring import action_metrics
from chemactor.training import parse_args

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_on_different_rows_and_save_one_model(shared_data, tmp_path):
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(RECIPES / "accelerate" / "ddp.yaml"),
        "--num_processes",
        "2",
        "--mixed_precision",
        "no",
        "--main_process_port",
        str(free_port()),
        str(ROOT / "tests" / "ddp_probe.py"),
        str(RECIPES / "sft_cpu_tiny.yaml"),
        *("--data_dir", str(shared_data), "--seed_sources", "paragraph2actions", "--output_dir", str(tmp_path)),
        *("--tasks", "d2a"),  # one view per sentence, so the row count below is the sentence count
        *("--max_steps", "3", "--eval_steps", "3", "--save_steps", "3", "--disable_tqdm", "true"),
        *("--eval_generation_samples", "2", "--eval_max_new_tokens", "8"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]

    ranks = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    assert [seen["world_size"] for seen in ranks] == [2, 2]
    rows = [{tuple(row) for batch in seen["batches"] for row in batch} for seen in ranks]
    assert rows[0] and rows[1] and not rows[0] & rows[1]  # each rank trains on its own shard
    assert len(rows[0] | rows[1]) == 80  # together: every Paragraph2Actions training sentence

    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert any("eval_full_sentence_accuracy" in row for row in state["log_history"])
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.config.num_hidden_layers == 2
    assert (tmp_path / "README.md").read_text().count("2 process(es)") == 1


def test_multi_gpu_configs_agree_with_the_full_recipe():
    """No GPU here: the configs are parsed by accelerate and checked against each other and the recipe."""
    args, training_args, model_args = parse_args([str(RECIPES / "sft_full.yaml"), "--use_cpu", "true"])
    configs = {
        name: load_config_from_file(str(RECIPES / "accelerate" / f"{name}.yaml"))
        for name in ("ddp", "fsdp", "deepspeed_zero3")
    }
    assert {name: config.distributed_type.value for name, config in configs.items()} == {
        "ddp": "MULTI_GPU",
        "fsdp": "FSDP",
        "deepspeed_zero3": "DEEPSPEED",
    }
    assert {config.mixed_precision for config in configs.values()} == {"bf16"} and training_args.bf16
    assert {config.num_processes for config in configs.values()} == {8}
    assert not any(config.use_cpu for config in configs.values())

    fsdp = configs["fsdp"].fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # the saved model must load with from_pretrained
    assert training_args.gradient_checkpointing and not fsdp["fsdp_activation_checkpointing"]  # one switch
    zero = configs["deepspeed_zero3"].deepspeed_config
    assert zero["zero_stage"] == 3 and zero["zero3_save_16bit_model"]

    assert model_args.model_name_or_path and model_args.dtype == "bfloat16" and not model_args.use_peft
    assert args.mix_ratio == "1:3" and set(args.tasks) == {"d2a", "r2d", "r2a", "a2d"}
    metric = training_args.metric_for_best_model.removeprefix("eval_")
    assert metric in action_metrics(["ADD water."], ["ADD water."])  # a metric the callback reports
    assert training_args.save_steps == training_args.eval_steps  # load_best_model_at_end needs them aligned
