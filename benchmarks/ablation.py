"""Ablation in the shape of the ChemActor paper, at CPU scale: what generated data, divergence selection and
the seed:generated ratio do to D2A on held-out real sentences.

Seeds: the Paragraph2Actions train pairs of the reference data. Held out: its validation and test pairs
together (no generated row derives from them: generation only sees the train split). Generated pool: the
rule-based augment generator run over the seed train pairs (``--samples`` variants each). Conditions:

- seeds only;
- seeds + all generated rows;
- seeds + randomly chosen generated rows, as many as divergence selection keeps;
- seeds + divergence-selected rows (``DivergenceSelector``, the lowest-divergence ``--fraction`` of the pool);
- divergence-selected rows alone, no seeds (the paper's "generated data only" arm: can the generated data
  stand on its own?);
- seeds + selected rows at mixing ratios 1:1, 1:3, 1:5 (seeds:generated, ``chemactor.builders.mix``).

Every condition trains the same tiny from-scratch model with the same budget (``--steps`` optimizer steps
of ``--batch-size`` rows) through the SFT recipe (``chemactor.training.build_trainer``), then extracts
actions for the held-out sentences greedily (``chemactor.inference``). Scores are
``chemactor.scoring.action_metrics``; each comes with a percentile bootstrap 95% interval over the
held-out sentences (``--bootstrap`` resamples, the same resamples for every condition).

    python -m benchmarks.ablation --steps 150
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np

from benchmarks._results import machine_line, write_section
from chemactor.builders import load_generated, load_seeds, mix
from chemactor.generation.backends import AugmentBackend
from chemactor.generation.runner import GenerationRunner, RunSettings
from chemactor.inference import ActionExtractor
from chemactor.scoring import action_metrics
from chemactor.selection import DivergenceSelector

ROOT = Path(__file__).resolve().parents[1]
RATIOS: tuple[str, ...] = ("1:1", "1:3", "1:5")
METRICS: tuple[str, ...] = (
    "full_sentence_accuracy",
    "partial_accuracy_0.9",
    "partial_accuracy_0.75",
    "partial_accuracy_0.5",
    "levenshtein_similarity",
    "modified_bleu",
    "original_bleu",
    "validity",
    "action_type_f1",
)


def generated_pool(seeds: datasets.Dataset, samples: int, seed: int, workdir: Path) -> datasets.Dataset:
    """``samples`` augment variants of every seed pair, written and read back as the pipeline does."""
    runner = GenerationRunner(AugmentBackend(seeds, seed=seed), RunSettings(steps="augment", samples=samples))
    runner.run(list(seeds), workdir / "generated", progress=False)
    return load_generated(workdir / "generated")


def conditions(
    seeds: datasets.Dataset, pool: datasets.Dataset, selected: datasets.Dataset, seed: int
) -> dict[str, datasets.Dataset]:
    """The training set of every condition; ``mix`` keeps each ratio exact."""
    random_rows = pool.shuffle(seed=seed).select(range(len(selected)))
    per_seed = len(selected) // len(seeds)
    everything = f"1:{len(pool) // len(seeds)}"
    return {
        "seeds only": mix(seeds, pool, "1:0", seed=seed),
        f"seeds + all generated ({everything})": mix(seeds, pool, everything, seed=seed),
        f"seeds + random generated (1:{per_seed})": mix(seeds, random_rows, f"1:{per_seed}", seed=seed),
        f"seeds + selected generated (1:{per_seed})": mix(seeds, selected, f"1:{per_seed}", seed=seed),
        "selected generated only (no seeds)": mix(seeds, selected, "0:1", seed=seed),
        **{f"seeds + selected, ratio {ratio}": mix(seeds, selected, ratio, seed=seed) for ratio in RATIOS},
    }


def train_and_extract(
    train: datasets.Dataset, held_out: datasets.Dataset, options: argparse.Namespace, output_dir: Path
) -> list[str]:
    """Train the tiny model on ``train`` (D2A views) for the fixed budget; its actions for ``held_out``."""
    from trl import ModelConfig, SFTConfig

    from chemactor.training import ScriptArguments, build_trainer

    args = ScriptArguments(
        tasks=["d2a"],
        eval_generation_samples=0,
        tokenizer_vocab_size=options.vocab_size,
        model_config_overrides={
            "hidden_size": options.hidden_size,
            "intermediate_size": options.hidden_size * 11 // 4,
            "num_hidden_layers": options.layers,
        },
    )
    training_args = SFTConfig(
        output_dir=str(output_dir),
        use_cpu=True,
        bf16=False,
        seed=options.seed,
        max_steps=options.steps,
        per_device_train_batch_size=options.batch_size,
        max_length=options.max_length,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, options.steps // 10),
        save_strategy="no",
        eval_strategy="no",
        logging_steps=options.steps,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = build_trainer(args, training_args, ModelConfig(), datasets.DatasetDict({"train": train}))
    trainer.train()
    extractor = ActionExtractor.from_model(trainer.model, trainer.processing_class, options.max_new_tokens)
    extractions = extractor.extract(held_out["description"], batch_size=16, split=False, progress=False)
    return [extraction.actions for extraction in extractions]


def bootstrap(
    predictions: list[str], references: list[str], resamples: np.ndarray
) -> dict[str, tuple[float, float, float]]:
    """Every metric as (value, low, high): the full-set value and a percentile 95% bootstrap interval."""
    full = action_metrics(predictions, references)
    draws = {name: [] for name in METRICS}
    for indices in resamples:
        scores = action_metrics([predictions[i] for i in indices], [references[i] for i in indices])
        for name in METRICS:
            draws[name].append(scores[name])
    return {
        name: (full[name], float(np.percentile(draws[name], 2.5)), float(np.percentile(draws[name], 97.5)))
        for name in METRICS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--samples", type=int, default=12, help="augment variants per seed pair")
    parser.add_argument("--fraction", type=float, default=0.5, help="share of the pool divergence selection keeps")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=600)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    machine = machine_line()
    started = time.monotonic()

    p2a = load_seeds("paragraph2actions", options.data_dir)
    seeds = p2a["train"]
    held_out = datasets.concatenate_datasets([p2a["validation"], p2a["test"]])
    references = list(held_out["actions"])
    workdir = Path(tempfile.mkdtemp(prefix="ablation-"))
    print(f"work folder: {workdir}", flush=True)
    pool = generated_pool(seeds, options.samples, options.seed, workdir)
    selector = DivergenceSelector().fit(seeds, held_out=held_out)
    selected = selector.select(selector.score(pool), fraction=options.fraction)
    rng = np.random.default_rng(options.seed)
    resamples = rng.integers(0, len(references), size=(options.bootstrap, len(references)))

    rows = []
    for index, (name, train) in enumerate(conditions(seeds, pool, selected, options.seed).items()):
        condition_started = time.monotonic()
        predictions = train_and_extract(train, held_out, options, workdir / f"condition-{index}")
        (workdir / f"condition-{index}" / "predictions.json").write_text(
            json.dumps({"condition": name, "predictions": predictions}, indent=1), encoding="utf-8"
        )
        scores = bootstrap(predictions, references, resamples)
        rows.append((name, len(train), scores, time.monotonic() - condition_started))
        print(
            f"{name}: {len(train)} rows, full-sentence accuracy {scores['full_sentence_accuracy'][0]:.3f}, "
            f"Levenshtein {scores['levenshtein_similarity'][0]:.3f} ({rows[-1][3]:.0f} s)",
            flush=True,
        )

    header = "| condition | train rows | " + " | ".join(METRICS) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(METRICS)]
    for name, size, scores, _ in rows:
        cells = [f"{value:.2f} [{low:.2f}, {high:.2f}]" for value, low, high in (scores[m] for m in METRICS)]
        lines.append(f"| {name} | {size} | " + " | ".join(cells) + " |")
    minutes = (time.monotonic() - started) / 60
    command = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in sorted(vars(options).items()))
    markdown = f"""## Ablation: generated data, selection, mixing ratio (`benchmarks/ablation.py`)

{machine}; load average {os.getloadavg()[0]:.1f} at the end; {minutes:.0f} minutes in all. Load on the machine
changes the time, not the numbers (fixed seeds, CPU).

`python -m benchmarks.ablation {command}`

Seeds: the {len(seeds)} Paragraph2Actions train pairs. Held out: its {len(held_out)} validation and test pairs
(the generator never sees them). Pool: {len(pool)} augment variants of the seed pairs; divergence selection
keeps {len(selected)}. Each condition trains the same {options.layers}-layer, hidden-{options.hidden_size}
Llama from scratch (with a tokenizer trained on its own training texts) for {options.steps} steps of
{options.batch_size} rows, D2A task only. Cells: the score on all {len(held_out)} held-out sentences
[percentile bootstrap 95% interval, {options.bootstrap} resamples of the held-out sentences].

{chr(10).join(lines)}
"""
    write_section("ablation", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
