"""GPU training throughput of the SFT recipe: a ~100M-parameter Llama from scratch in bf16, tokens/s and MFU.

Runs the recipe itself (``chemactor.training.build_trainer`` on all three seed sources and tasks) with a
GPT-2-small-sized Llama config, times the steps after a warm-up, and prints a table; with ``--write`` the
table also goes into ``benchmarks/RESULTS.md``. One GPU, any kind:

    python -m benchmarks.gpu_throughput --data-dir ../shared/data --write

Model FLOPs utilization counts the work the model needs per trained (non-padding) token, 6 N for the weight
matrices (forward and backward) plus 12 L d S for attention scores (PaLM, appendix B; S the mean trained
sequence length), against the card's dense bf16 peak. Padding and recomputation are work the GPU does but
the model does not need, so they lower MFU, as they should.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from benchmarks._results import machine_line, write_section
from chemactor.training import build_trainer, load_training_data, parse_args

ROOT = Path(__file__).resolve().parents[1]

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}

MODEL_100M = {
    "hidden_size": 768,
    "intermediate_size": 2304,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_key_value_heads": 12,
    "max_position_embeddings": 2048,
}


class StepTimer(TrainerCallback):
    """Wall time and tokens between the end of the warm-up steps and the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: tuple[float, int] | None = None
        self.end: tuple[float, int] | None = None

    def on_step_end(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        mark = (time.perf_counter(), state.num_input_tokens_seen)
        if state.global_step == self.warmup:
            self.start = mark
        self.end = mark


def peak_tflops(name: str, given: float | None) -> float | None:
    if given:
        return given
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--peak-tflops", type=float, help="The GPU's dense bf16 peak, if not in the table.")
    parser.add_argument("--write", action="store_true", help="Also write the table into benchmarks/RESULTS.md.")
    options = parser.parse_args()
    if options.steps <= options.warmup:
        parser.error(f"--steps ({options.steps}) must exceed --warmup ({options.warmup}): only later steps are timed")
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible: this benchmark measures GPU training")

    with tempfile.TemporaryDirectory(prefix="gpu-throughput-") as output_dir:
        markdown = measure(options, output_dir)
    print(markdown)
    if options.write:
        write_section("gpu-training-throughput", markdown)


def measure(options: argparse.Namespace, output_dir: str) -> str:
    """Train the recipe for ``options.steps`` steps in ``output_dir`` and return the results table."""
    overrides = {
        "data_dir": options.data_dir,
        "output_dir": output_dir,
        "use_cpu": "false",
        "bf16": "true",
        "max_steps": options.steps,
        "per_device_train_batch_size": options.batch_size,
        "max_length": options.max_length,
        "learning_rate": 6e-4,
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_steps": options.steps,
        "dataloader_num_workers": 2,
        "tokenizer_vocab_size": 8000,
        "model_config_overrides": json.dumps(MODEL_100M),
    }
    argv = [str(ROOT / "recipes" / "sft_cpu_tiny.yaml"), "--seed_sources", "paragraph2actions", "smiles2actions", "ord"]
    argv += [item for name, value in overrides.items() for item in (f"--{name}", str(value))]
    args, training_args, model_args = parse_args(argv)
    training_args.include_num_input_tokens_seen = "non_padding"  # a str-or-bool field the CLI parser reads as bool
    data = load_training_data(args, training_args.seed)
    trainer = build_trainer(args, training_args, model_args, data.records)
    timer = StepTimer(options.warmup)
    trainer.add_callback(timer)
    trainer.train()

    config = trainer.model.config
    parameters = sum(parameter.numel() for parameter in trainer.model.parameters())
    seconds = timer.end[0] - timer.start[0]
    tokens = timer.end[1] - timer.start[1]
    rate = tokens / seconds
    # N counts the tied embedding once, as the output projection (the input lookup is no matmul); attention
    # scores grow with the sequence, taken at the mean trained length.
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    mean_length = sum(lengths) / len(lengths)
    flops_per_token = 6 * parameters + 12 * config.num_hidden_layers * config.hidden_size * mean_length
    name = torch.cuda.get_device_name()
    peak = peak_tflops(name, options.peak_tflops)
    mfu = f"{100 * rate * flops_per_token / (peak * 1e12):.1f}%" if peak else "n/a (pass --peak-tflops)"
    memory = torch.cuda.max_memory_allocated() / 2**30
    return f"""## GPU training throughput: ~100M Llama from scratch, bf16

`python -m benchmarks.gpu_throughput --steps {options.steps} --batch-size {options.batch_size}` — {name},
{machine_line()}. {parameters / 1e6:.1f}M parameters ({config.num_hidden_layers} layers, hidden
{config.hidden_size}, vocabulary {config.vocab_size}), bf16 mixed precision, batch {options.batch_size},
sequences up to {options.max_length} tokens (mean {mean_length:.0f}, no packing),
steps {options.warmup + 1}-{options.steps} timed.

| GPU | tokens/s (non-padding) | model TFLOP/s | peak bf16 TFLOP/s | MFU | peak memory |
|---|---:|---:|---:|---:|---:|
| {name} | {rate:,.0f} | {rate * flops_per_token / 1e12:.1f} | {peak or "?"} | {mfu} | {memory:.1f} GiB |
"""


if __name__ == "__main__":
    main()
