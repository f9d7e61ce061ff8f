"""Supervised fine-tuning of a causal LM on ChemActor records, and the tiny from-scratch model used offline.

The tokenizer and model builders come first: tests across the project need a real (if tiny) model that
loads with ``from_pretrained`` from one directory, and no pretrained weights are reachable offline.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

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
