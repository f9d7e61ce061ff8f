"""Training throughput of the ChemActor SFT recipe against a bare TRL ``SFTTrainer`` on the same model and data.

The recipe adds data loading and mixing, task views, a from-scratch tokenizer, an evaluation callback and
checkpoint discovery around ``SFTTrainer``; none of that should slow the training loop itself. Both sides
train the same from-scratch model (same initialization) on the same prompt/completion rows, built afresh for
every run on both sides (a reused ``Dataset`` object made the bare side look faster), with the same
``SFTConfig``; after a warm-up run, runs alternate in pairs whose order flips (recipe-bare, bare-recipe, ...)
so that a change in machine load hits both, and the median of the repeats is reported. Tokens are
non-padding input tokens, as the Trainer counts them.

    python -m benchmarks.bench_training --steps 20 --repeats 6
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer
from trl import SFTTrainer

from benchmarks._results import machine_line, write_section
from chemactor.training import (
    build_tiny_model,
    build_trainer,
    load_training_data,
    parse_args,
    task_views,
)

ROOT = Path(__file__).resolve().parents[1]


def throughput(trainer: SFTTrainer) -> tuple[float, float]:
    """Tokens per wall-clock second and per CPU second (all threads) of one ``train()``.

    On a machine shared with other jobs, wall-clock rates swing with their load; CPU time counts only this
    process's work, so it is the steadier measure of what the code costs.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return trainer.state.num_input_tokens_seen / wall, trainer.state.num_input_tokens_seen / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is work, not spinning)")
    options = parser.parse_args()
    # With more threads than free cores, idle OpenMP threads spin and bill CPU time for nothing.
    torch.set_num_threads(options.threads)
    machine = machine_line()
    workdir = Path(tempfile.mkdtemp(prefix="bench-training-"))
    overrides = {
        "data_dir": options.data_dir,
        "output_dir": workdir / "recipe",
        "max_steps": options.steps,
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_steps": options.steps,
        "disable_tqdm": "true",
        "model_config_overrides": (
            f'{{"hidden_size": {options.hidden_size}, "intermediate_size": {options.hidden_size * 11 // 4}, '
            f'"num_hidden_layers": {options.layers}}}'
        ),
    }
    argv = [str(ROOT / "recipes" / "sft_cpu_tiny.yaml")]
    argv += [item for name, value in overrides.items() for item in (f"--{name}", str(value))]
    args, training_args, model_args = parse_args(argv)
    training_args.include_num_input_tokens_seen = "non_padding"  # a str-or-bool field the CLI parser reads as bool
    data = load_training_data(args, training_args.seed)
    view_count = task_views(data.records["train"], args.tasks).num_rows

    def recipe_trainer() -> SFTTrainer:
        return build_trainer(args, training_args, model_args, data.records)  # seeds; reuses the saved tokenizer

    def bare_trainer() -> SFTTrainer:
        torch.manual_seed(training_args.seed)  # the same initial weights as the recipe's model
        tokenizer = AutoTokenizer.from_pretrained(training_args.output_dir)
        return SFTTrainer(
            model=build_tiny_model(tokenizer, **args.model_config_overrides),
            args=training_args,
            train_dataset=task_views(data.records["train"], args.tasks),  # built per run, as the recipe does
            processing_class=tokenizer,
        )

    builders = {"recipe": recipe_trainer, "bare": bare_trainer}
    throughput(recipe_trainer())  # warm-up: the first train() of a process pays one-off costs
    rates: dict[str, list[tuple[float, float]]] = {"recipe": [], "bare": []}
    for repeat in range(options.repeats):
        for name in ("recipe", "bare") if repeat % 2 == 0 else ("bare", "recipe"):  # neither always goes first
            rates[name].append(throughput(builders[name]()))
    shutil.rmtree(workdir, ignore_errors=True)

    def median(name: str, index: int) -> float:
        return statistics.median(run[index] for run in rates[name])

    overhead = {
        index: 100 * (median("bare", index) - median("recipe", index)) / median("bare", index) for index in (0, 1)
    }
    parameters = sum(parameter.numel() for parameter in recipe_trainer().model.parameters())
    labels = {"recipe": "ChemActor recipe (`build_trainer`)", "bare": "bare `SFTTrainer`"}
    rows = "\n".join(
        f"| {labels[name]} | {median(name, 1):,.0f} | {median(name, 0):,.0f} | "
        f"{', '.join(f'{cpu:,.0f} / {wall:,.0f}' for wall, cpu in runs)} |"
        for name, runs in rates.items()
    )
    markdown = f"""## Training throughput: recipe vs bare SFTTrainer

`python -m benchmarks.bench_training --steps {options.steps} --repeats {options.repeats}` — {machine};
{os.getloadavg()[0]:.1f} at the end. Under load single runs vary, so runs
alternate (recipe-bare, bare-recipe, ...) after one warm-up run, and medians are compared. From-scratch
Llama, {parameters:,} parameters (hidden {options.hidden_size}, {options.layers} layers), fp32 on CPU,
{options.threads} torch thread(s),
{view_count} prompt/completion rows (Paragraph2Actions + Smiles2Actions train views),
batch {training_args.per_device_train_batch_size}, {options.steps} steps per run, completion-only loss.

| trainer | median tokens per CPU-second | median tokens per wall-second | runs (CPU / wall) |
|---|---:|---:|---|
{rows}

Recipe overhead: **{overhead[1]:+.1f}%** in tokens per CPU-second, {overhead[0]:+.1f}% in tokens per
wall-second (positive: the recipe is slower; target at most 5%). CPU time counts this process's own work
(all threads), so it is the steadier of the two while other jobs share the cores.
"""
    write_section("training-throughput", markdown)
    print(markdown)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"finished in {time.perf_counter() - started:.0f} s")
