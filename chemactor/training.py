"""Full supervised fine-tuning of a causal LM on ChemActor records: the SFT recipe and a tiny offline model.

The recipe reads like open-r1's ``sft.py``: dataclass configs parsed by TRL's ``TrlParser`` from a YAML
recipe plus command-line overrides, then load data, build the trainer, train (resuming from the last
checkpoint), save, write the model card, push. Scale-out is an accelerate config, not code::

    python -m chemactor.training recipes/sft_cpu_tiny.yaml --max_steps 20
    accelerate launch --config_file recipes/accelerate/deepspeed_zero3.yaml -m chemactor.training recipes/sft_full.yaml

Without ``model_name_or_path`` the recipe trains a tokenizer on the training texts and a small Llama-style
model from scratch, so everything runs offline; other parts' tests use the same two builders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import json
import logging
import sys
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import yaml
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from chemactor.builders import load_seeds, mix, parse_ratio, read_records
from chemactor.config import check_value
from chemactor.cpu import limit_torch_threads
from chemactor.data import TASKS, get_meta, has_task, task_view
from chemactor.errors import ConfigError, closest

logger = logging.getLogger(__name__)

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"

# SMILES bond/branch/ring/charge characters stand alone so that merges never glue them to names or numbers
# in odd ways: "C(=O)O" splits as C ( = O ) O whatever the training text looked like.
_SMILES_PUNCTUATION = r"[\(\)\[\]=#\$@\+\-\\/%~\.:;,>]"
# Units should read as one token each; a small training text may not show them often enough for BPE to merge
# them, so the trainer also sees them as a short repeated line (as plain text, which keeps byte-level decoding
# exact; added tokens would bypass the byte-level mapping and decode "°C" wrongly).
UNITS: tuple[str, ...] = ("°C", "mL", "µL", "mmol", "mol", "mg", "kg", "min", "h", "RT", "rt", "eq", "equiv", "M")
_UNIT_REPEATS = 64


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts``, split so that chemistry text tokenizes sensibly.

    Digits are split one by one (quantities like ``52.63`` generalize across values), SMILES punctuation is
    isolated, common units are single tokens, and byte-level fallback means no text is ever unknown.
    A BOS token is prepended and EOS is the end-of-completion marker SFT appends.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SMILES_PUNCTUATION), behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    units = " " + " ".join(UNITS)
    tokenizer.train_from_iterator(itertools.chain(texts, itertools.repeat(units, _UNIT_REPEATS)), trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, tokenizer.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="left"
    )


def build_tiny_model(tokenizer: PreTrainedTokenizerFast, **config_overrides: int | float | str) -> LlamaForCausalLM:
    """A small Llama-style model initialized from scratch for ``tokenizer``.

    The defaults (hidden 64, 2 layers) train in seconds on a CPU; pass ``LlamaConfig`` fields to scale it,
    e.g. ``hidden_size=768, num_hidden_layers=12`` for a ~100M-parameter model.
    """
    config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 176,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": True,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **config_overrides,
    }
    return LlamaForCausalLM(LlamaConfig(**config))


# --- the recipe ------------------------------------------------------------------------------------------


@dataclass
class ScriptArguments:
    """What to train on and what to do around training; model and trainer settings are TRL's own configs."""

    seed_sources: list[str] = field(
        default_factory=lambda: ["paragraph2actions"],
        metadata={
            "help": "Seed sources for chemactor.builders.load_seeds: paragraph2actions, smiles2actions, ord, examples, "
            "or a load_dataset spec REPO_OR_FOLDER[:CONFIG] (a published dataset, e.g. org/chemactor-data:seeds, "
            "or a `chemactor data build` folder)."
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with the seed data; without it the upstream files are used."}
    )
    generated_dir: str | None = field(
        default=None,
        metadata={
            "help": "Generated records to mix in: `chemactor select` output's selected/, a generation output, or a "
            "load_dataset spec REPO_OR_FOLDER[:CONFIG] (e.g. org/chemactor-data:selected)."
        },
    )
    mix_ratio: str = field(default="1:3", metadata={"help": "Seed to generated training rows, e.g. 1:3."})
    tasks: list[str] = field(
        default_factory=lambda: ["d2a", "r2d", "a2d"],
        metadata={"help": "Task views to train on (d2a, r2d, r2a, a2d; circle review needs a2d)."},
    )
    eval_generation_samples: int = field(
        default=16, metadata={"help": "Held-out D2A rows generated at each evaluation for action metrics (0: off)."}
    )
    eval_max_new_tokens: int = field(default=128, metadata={"help": "Generation budget per held-out row."})
    constrained: bool = field(
        default=True, metadata={"help": "Decode the held-out D2A generations under the action grammar."}
    )
    tokenizer_vocab_size: int = field(
        default=1000, metadata={"help": "Vocabulary of the tokenizer trained when no model_name_or_path is given."}
    )
    model_config_overrides: dict[str, Any] | str | None = field(
        default=None, metadata={"help": "LlamaConfig fields for the from-scratch model (JSON on the command line)."}
    )
    hub_repo_id: str | None = field(
        default=None,
        metadata={
            "help": "Push the final model, tokenizer and ChemActor model card here. (SFTConfig's push_to_hub "
            "makes the Trainer push checkpoints with a generic card instead.)"
        },
    )

    def __post_init__(self) -> None:
        if isinstance(self.model_config_overrides, str):
            try:
                self.model_config_overrides = json.loads(self.model_config_overrides)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"model_config_overrides: not JSON ({exc}): {self.model_config_overrides!r}"
                ) from None
        check_model_config_overrides(self.model_config_overrides)
        parse_ratio(self.mix_ratio)  # fail before any data is loaded
        unknown = sorted(set(self.tasks) - set(TASKS))
        if unknown:
            raise ConfigError(
                f"tasks: unknown task {unknown[0]!r}{closest(unknown[0], TASKS)}; known: {', '.join(TASKS)}"
            )


MODEL_CONFIG_CLASS = LlamaConfig
"""The configuration class of the from-scratch model (:func:`build_tiny_model`); overrides must be its fields."""


def check_model_config_overrides(overrides: Any, path: str = "model_config_overrides") -> None:
    """Reject overrides that are not fields of :data:`MODEL_CONFIG_CLASS`, naming the closest field.

    ``PretrainedConfig`` keeps any unknown keyword as an attribute, so a misspelled ``num_hiden_layers``
    would otherwise train the default depth silently and land in ``config.json`` beside the real field.
    """
    if overrides is None:
        return
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{path}: expected a mapping of {MODEL_CONFIG_CLASS.__name__} fields, got {overrides!r}")
    default = MODEL_CONFIG_CLASS()
    known = set(vars(default)) | set(inspect.signature(MODEL_CONFIG_CLASS.__init__).parameters) - {"self", "kwargs"}
    for key in overrides:
        if not hasattr(default, key) and key not in known:
            suggestion = closest(str(key), known)
            raise ConfigError(f"{path}.{key}: not a {MODEL_CONFIG_CLASS.__name__} field{suggestion}")


RECIPE_CLASSES: tuple[type, ...] = (ScriptArguments, SFTConfig, ModelConfig)


def check_recipe(recipe: Mapping[str, Any], path: str = "", source: str = "") -> dict[str, Any]:
    """Check an SFT recipe mapping before TRL's parser sees it: every key a field of one of
    :data:`RECIPE_CLASSES` (else the closest field is named) and every value of a plain type (numbers,
    strings, booleans, lists of them) of that type. Fields of richer types (enums, unions with them)
    are left to the dataclasses themselves. Returns the recipe with numeric strings read as numbers.
    """
    prefix, at = (f"{path}." if path else ""), (f"{source}: " if source else "")
    fields: dict[str, Any] = {}
    for cls in RECIPE_CLASSES:
        hints = typing.get_type_hints(cls)
        fields.update({item.name: hints[item.name] for item in dataclasses.fields(cls) if item.init})
    checked = dict(recipe)
    for key, value in recipe.items():
        if key not in fields:
            raise ConfigError(f"{at}{prefix}{key}: unknown key{closest(str(key), fields)}")
        with contextlib.suppress(TypeError):  # a type the checker does not know: the dataclass validates it
            checked[key] = check_value(value, fields[key], prefix + key, source)
    check_model_config_overrides(recipe.get("model_config_overrides"), f"{at}{prefix}model_config_overrides")
    return checked


def parse_recipe_dict(recipe: Mapping[str, Any], path: str = "") -> tuple[ScriptArguments, SFTConfig, ModelConfig]:
    """``(ScriptArguments, SFTConfig, ModelConfig)`` from a recipe mapping, checked by :func:`check_recipe`."""
    checked = check_recipe(recipe, path)
    try:
        return _check_combination(*TrlParser(RECIPE_CLASSES).parse_dict(checked))
    except ConfigError as exc:
        raise ConfigError(f"{path + '.' if path else ''}{exc}") from None
    except ValueError as exc:  # the dataclasses' own checks (TrainingArguments' combinations of options)
        raise ConfigError(f"{path + ': ' if path else ''}{exc}") from None


def _check_combination(
    args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig
) -> tuple[ScriptArguments, SFTConfig, ModelConfig]:
    """Options that are each valid but do nothing together are refused rather than silently ignored."""
    if args.model_config_overrides and model_args.model_name_or_path:
        raise ConfigError(
            "model_config_overrides: shapes the model trained from scratch, but model_name_or_path loads "
            f"{model_args.model_name_or_path!r}; remove one of them"
        )
    return args, training_args, model_args


def parse_args(argv: Sequence[str] | None = None) -> tuple[ScriptArguments, SFTConfig, ModelConfig]:
    """Parse ``[RECIPE.yaml] [--field value ...]``: the recipe sets defaults, the command line overrides them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml")):
        argv = ["--config", argv[0], *argv[1:]]
    if "--config" in argv:  # TRL takes the recipe's keys as defaults, unchecked: check them first
        path = argv[argv.index("--config") + 1]
        try:
            recipe = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the recipe: {exc}") from None
        if not isinstance(recipe, Mapping):
            raise ConfigError(f"{path}: a recipe is a mapping of keys, got {type(recipe).__name__}")
        check_recipe({key: value for key, value in recipe.items() if key != "env"}, source=path)
    return _check_combination(*TrlParser(RECIPE_CLASSES).parse_args_and_config(argv))


@dataclass
class TrainingData:
    """The records to train and evaluate on, and where they came from (for the model card)."""

    records: datasets.DatasetDict
    sources: list[dict[str, Any]]
    generated: dict[str, Any] | None = None


def load_training_data(args: ScriptArguments, seed: int = 0) -> TrainingData:
    """Seed train/validation splits of every source, with selected generated rows mixed into train."""
    selected = read_records(args.generated_dir) if args.generated_dir else None  # a bad path fails first
    seeds = {source: load_seeds(source, args.data_dir) for source in args.seed_sources}
    records = datasets.DatasetDict(
        {
            split: datasets.concatenate_datasets([dataset[split] for dataset in seeds.values() if split in dataset])
            for split in ("train", "validation")
        }
    )
    sources = [
        {
            "name": name,
            "license": dataset["train"].info.license,
            "homepage": dataset["train"].info.homepage,
            "rows": {split: len(rows) for split, rows in dataset.items()},
        }
        for name, dataset in seeds.items()
    ]
    if selected is None:
        return TrainingData(records, sources)
    records, generated = mix_generated(records, selected, args.mix_ratio, seed)
    return TrainingData(records, sources, {"path": args.generated_dir, **generated})


def mix_generated(
    records: datasets.DatasetDict, selected: datasets.Dataset, ratio: str, seed: int = 0
) -> tuple[datasets.DatasetDict, dict[str, Any]]:
    """``records`` with ``selected`` generated rows mixed into train at ``ratio``, and what was mixed (for the card).

    The mix is ``chemactor.builders.mix``: seeds and generated rows at exactly ``ratio``. Validation stays real.
    """
    train = mix(records["train"], selected, ratio, seed=seed)
    # chemactor select records each kept row's scores in meta.divergence
    divergences = [get_meta(row).get("divergence", {}).get("divergence") for row in selected]
    generated = {
        "available": len(selected),
        "used": len(set(train["id"]) & set(selected["id"])),
        "seeds_available": len(records["train"]),
        "ratio": ratio,
        "max_divergence": max(divergences) if divergences and None not in divergences else None,
    }
    return datasets.DatasetDict({**records, "train": train}), generated


def task_views(records: datasets.Dataset, tasks: Sequence[str]) -> datasets.Dataset:
    """Prompt/completion rows for every task a record supports (an ORD row gives R2D only, for instance)."""

    def expand(batch: dict[str, list]) -> dict[str, list[str]]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        views = [task_view(row, task) for row in rows for task in tasks if has_task(row, task)]
        return {"prompt": [view["prompt"] for view in views], "completion": [view["completion"] for view in views]}

    return records.map(expand, batched=True, remove_columns=records.column_names, desc="task views")


def as_conversation(view: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """A prompt/completion row as chat turns, for a tokenizer that brings its own chat template."""
    return {
        "prompt": [{"role": "user", "content": view["prompt"]}],
        "completion": [{"role": "assistant", "content": view["completion"].strip()}],
    }


def load_model_and_tokenizer(
    args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig, texts: Iterable[str]
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The pretrained model named in ``model_args``, or a tokenizer trained on ``texts`` and a tiny model.

    A from-scratch tokenizer is trained once per output directory, by the main process, and saved there
    at once: other ranks and resumed runs load that very vocabulary instead of training a second one.
    """
    if model_args.model_name_or_path:
        name, revision = model_args.model_name_or_path, model_args.model_revision
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(
            name, revision=revision, dtype=model_args.dtype, attn_implementation=model_args.attn_implementation
        )
        return model, tokenizer
    output_dir = Path(training_args.output_dir)
    with training_args.main_process_first(desc="training the tokenizer"):
        if (output_dir / "tokenizer.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(output_dir)
        else:
            tokenizer = train_tokenizer(texts, vocab_size=args.tokenizer_vocab_size)
            tokenizer.save_pretrained(output_dir)
    return build_tiny_model(tokenizer, **(args.model_config_overrides or {})), tokenizer


class ActionMetricsCallback(TrainerCallback):
    """At each evaluation, extract actions for held-out descriptions and add the D2A metrics to the results.

    Every rank generates (sharded models need all ranks in each forward pass); the scores land in the
    evaluation metrics, so ``metric_for_best_model`` can name one (e.g. ``eval_full_sentence_accuracy``).
    """

    def __init__(self, records: datasets.Dataset, max_new_tokens: int = 128, constrained: bool = True) -> None:
        self.descriptions = list(records["description"])
        self.references = list(records["actions"])
        self.max_new_tokens = max_new_tokens
        self.constrained = constrained

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: PreTrainedModel | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        from chemactor.inference import ActionExtractor
        from chemactor.scoring import action_metrics

        extractor = ActionExtractor.from_model(
            model, processing_class, max_new_tokens=self.max_new_tokens, constrained=self.constrained
        )
        extractions = extractor.extract(
            self.descriptions, batch_size=args.per_device_eval_batch_size, split=False, progress=False
        )
        scores = action_metrics([extraction.actions for extraction in extractions], self.references)
        flat = {f"eval_{name}": value for name, value in scores.items() if isinstance(value, (int, float))}
        metrics.update(flat)
        state.log_history.append({**flat, "step": state.global_step})


def build_trainer(
    args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig, records: datasets.DatasetDict
) -> SFTTrainer:
    """An ``SFTTrainer`` for full fine-tuning on the task views of ``records`` (completion-only loss).

    torch's threads are sized to the cores free now (:func:`chemactor.cpu.limit_torch_threads`).
    """
    limit_torch_threads()
    train_views = task_views(records["train"], args.tasks)
    evaluating = training_args.eval_strategy != "no" and "validation" in records
    eval_views = task_views(records["validation"], args.tasks) if evaluating else None
    set_seed(training_args.seed)  # a from-scratch model starts from the same weights whatever ran before
    model, tokenizer = load_model_and_tokenizer(
        args, training_args, model_args, (text for row in train_views for text in row.values())
    )
    if tokenizer.chat_template:
        train_views = train_views.map(as_conversation)
        eval_views = eval_views.map(as_conversation) if eval_views is not None else None
    callbacks = []
    if evaluating and args.eval_generation_samples:
        held_out = records["validation"].filter(lambda row: has_task(row, "d2a"))
        held_out = held_out.select(range(min(args.eval_generation_samples, len(held_out))))
        if len(held_out):
            callbacks.append(ActionMetricsCallback(held_out, args.eval_max_new_tokens, args.constrained))
    return SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_views,
        eval_dataset=eval_views,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=get_peft_config(model_args),
    )


def train_and_save(
    trainer: SFTTrainer, args: ScriptArguments, model_args: ModelConfig, data: TrainingData
) -> dict[str, float]:
    """Train (from the last checkpoint in the output directory, if any), save, evaluate, card, push."""
    training_args = trainer.args
    output_dir = Path(training_args.output_dir)
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and output_dir.is_dir():
        checkpoint = get_last_checkpoint(str(output_dir))
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    metrics = dict(trainer.train(resume_from_checkpoint=checkpoint).metrics)
    trainer.save_model(str(output_dir))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    if trainer.eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        metrics.update(eval_metrics)
    if trainer.accelerator.is_main_process:
        from chemactor.hub import TRAINING_FACTS, model_facts, push_model, render_model_card

        facts = model_facts(
            trainer.model,
            base_model=model_args.model_name_or_path,
            sources=data.sources,
            generated=data.generated,
            tasks=args.tasks,
            metrics=metrics,
            training_args=training_args,
            train_rows=len(data.records["train"]),
            chat=bool(trainer.processing_class.chat_template),
        )
        (output_dir / TRAINING_FACTS).write_text(json.dumps(facts, indent=2, default=str) + "\n", encoding="utf-8")
        render_model_card(facts, repo_id=args.hub_repo_id).save(output_dir / "README.md")
        if args.hub_repo_id:
            push_model(
                output_dir,
                args.hub_repo_id,
                token=training_args.hub_token,
                private=bool(training_args.hub_private_repo),
            )
    trainer.accelerator.wait_for_everyone()
    return metrics


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the recipe given as ``[RECIPE.yaml] [--field value ...]``; returns the final metrics."""
    args, training_args, model_args = parse_args(argv)
    data = load_training_data(args, training_args.seed)
    trainer = build_trainer(args, training_args, model_args, data.records)
    return train_and_save(trainer, args, model_args, data)


if __name__ == "__main__":
    main()
