"""Run the SFT recipe under ``accelerate launch`` and record, per rank, which training rows it was given.

``python -m accelerate.commands.launch --num_processes 2 ... tests/ddp_probe.py RECIPE [--field value ...]``
writes ``rank-<n>.json`` (the token ids of every batch the rank's dataloader yields in one epoch) into the
output directory, then trains, saves and cards exactly as ``python -m chemactor.training`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

from chemactor.training import build_trainer, load_training_data, parse_args, train_and_save


def main() -> None:
    args, training_args, model_args = parse_args()
    data = load_training_data(args, training_args.seed)
    trainer = build_trainer(args, training_args, model_args, data.records)
    batches = [batch["input_ids"].tolist() for batch in trainer.get_train_dataloader()]
    rank = trainer.accelerator.process_index
    seen = {"world_size": trainer.accelerator.num_processes, "batches": batches}
    (Path(training_args.output_dir) / f"rank-{rank}.json").write_text(json.dumps(seen), encoding="utf-8")
    train_and_save(trainer, args, model_args, data)


if __name__ == "__main__":
    main()
