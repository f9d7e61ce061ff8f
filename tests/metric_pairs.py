"""Prediction/reference pairs for the metric tests and benchmarks, built from the shared reference data.

``tests/p2a_cases.py`` perturbs whole Paragraph2Actions strings, so its 10,000 pairs hold only 100 distinct
references and many repeated predictions. The pairs here are built another way: every reference is a new
sequence of actions drawn from all Paragraph2Actions and Smiles2Actions targets, and every prediction edits
it action by action (dropped, replaced, duplicated, swapped, a character typo), so almost every string is
distinct, as model output on a real test set is. Procedure pairs (R2D) perturb ORD procedure texts word by
word. Everything is deterministic in ``seed``.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

SEPARATORS = {"readable": ("; ", "."), "placeholder": (" ; ", "")}


def action_pool(shared_data: Path) -> list[str]:
    """Every action of the Paragraph2Actions and Smiles2Actions targets, in file order (duplicates kept)."""
    pool = []
    for folder, separator, end in (("paragraph2actions", "; ", "."), ("smiles2actions", " ; ", "")):
        for split in ("train", "valid", "test"):
            for line in (shared_data / folder / f"tgt-{split}.txt").read_text(encoding="utf-8").splitlines():
                text = line.removesuffix(end) if end else line
                pool += [action for action in text.split(separator) if action]
    return pool


def _typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text))
    return text[:i] + rng.choice("aeiouxyz0123 ;$") + text[i + 1 :]


def _edit(actions: list[str], rng: random.Random, pool: list[str]) -> list[str]:
    edited = []
    for action in actions:
        roll = rng.random()
        if roll < 0.08:
            continue
        if roll < 0.16:
            action = rng.choice(pool)
        elif roll < 0.2:
            edited.append(action)
        elif roll < 0.3:
            action = _typo(action, rng)
        edited.append(action)
    if len(edited) > 1 and rng.random() < 0.2:
        i = rng.randrange(len(edited) - 1)
        edited[i], edited[i + 1] = edited[i + 1], edited[i]
    return edited


def recombined_action_pairs(
    shared_data: Path, count: int, seed: int = 0, style: str = "readable"
) -> tuple[list[str], list[str]]:
    """``count`` (predictions, references) of action strings in ``style``; references are 1 to 15 actions
    drawn from :func:`action_pool`, predictions edit them (one in 10 answers free text or nothing)."""
    rng = random.Random(seed)
    pool = action_pool(shared_data)
    separator, end = SEPARATORS[style]
    predictions, references = [], []
    for _ in range(count):
        actions = [rng.choice(pool) for _ in range(rng.randint(1, 15))]
        roll = rng.random()
        if roll < 0.05:
            prediction = ""
        elif roll < 0.1:
            prediction = "The mixture was stirred at room temperature overnight."
        elif roll < 0.25:
            prediction = separator.join(actions) + end
        else:
            prediction = separator.join(_edit(actions, rng, pool)) + end
        predictions.append(prediction)
        references.append(separator.join(actions) + end)
    return predictions, references


def procedure_texts(shared_data: Path, count: int) -> list[str]:
    """Up to ``count`` distinct non-empty ORD procedure texts, in file order."""
    texts: dict[str, None] = {}
    with gzip.open(shared_data / "ord_r2d" / "reactions.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            text = json.loads(line)["procedure_details"]
            if text and text.strip():
                texts[text] = None
                if len(texts) == count:
                    break
    return list(texts)


def procedure_pairs(shared_data: Path, count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``count`` (predictions, references) of procedure texts: each reference an ORD procedure, each
    prediction the same text with words dropped, replaced, repeated or re-cased, another procedure, or an
    edge case (empty, only dots, a trailing newline, one word); a small copy of the data repeats texts."""
    rng = random.Random(seed)
    texts = procedure_texts(shared_data, count)
    references = [texts[i % len(texts)] for i in range(count)]
    predictions = []
    for reference in references:
        roll = rng.random()
        if roll < 0.03:
            predictions.append(rng.choice(["", ".", "...", " ", "\n", "stirred", "Stirred."]))
        elif roll < 0.1:
            predictions.append(rng.choice(references))
        elif roll < 0.15:
            predictions.append(reference + "\n")
        else:
            words = reference.split(" ")
            edited = []
            for word in words:
                r = rng.random()
                if r < 0.1:
                    continue
                if r < 0.2:
                    word = rng.choice(words)
                elif r < 0.23:
                    edited.append(word)
                elif r < 0.26:
                    word = word.upper()
                edited.append(word)
            predictions.append(" ".join(edited))
    return predictions, references
