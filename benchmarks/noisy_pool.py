"""A labelled noisy pool of (description, actions) pairs built from the reference data, for selection benchmarks.

Reference: the annotated training pairs (Paragraph2Actions ``train`` and the project's example ``train``).
Good rows: held-out real pairs (their ``validation`` and ``test`` splits) and consistent edits of real
pairs (a compound swapped for another, or quantities changed, in both the description and the actions),
which is what a well-behaved generator produces. Bad rows imitate what generators get wrong:

- ``mismatched``: the description of one pair with the actions of another;
- ``wrong_types``: one or two action keywords replaced by another action type;
- ``truncated``: only the first third of the actions of a pair with at least three;
- ``off_domain``: a long ORD procedure paragraph, or non-chemistry prose, with the actions of some pair;
- ``prose``: the actions written as sentences ("Add THF (10 mL). Then stir ...");
- ``foreign_schema``: the actions as JSON or as a Markdown list;
- ``exact_duplicate`` / ``near_duplicate``: a copy of a good row, verbatim or with case, spacing,
  punctuation or one word changed;
- ``repetition``: degenerate loops, the last action (or a phrase of the description) repeated.

Exact copies are indistinguishable from their original, so after shuffling the first copy of each
group is labelled with the original's kind and the later ones ``exact_duplicate``.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import datasets

from chemactor.actions import ACTION_NAMES, ActionParseError, iter_chemicals, parse_actions
from chemactor.builders import load_seeds
from chemactor.data import iter_jsonl
from chemactor.examples import load_examples

GOOD_KINDS = ("real", "consistent_edit")
BAD_KINDS = (
    "mismatched",
    "wrong_types",
    "truncated",
    "off_domain",
    "prose",
    "foreign_schema",
    "exact_duplicate",
    "near_duplicate",
    "repetition",
)

OFF_TOPIC_PROSE = (
    "The committee met on Tuesday to review the annual budget. After a long discussion about travel costs, "
    "the members agreed to postpone the decision until the next quarterly meeting, when updated figures from "
    "the finance office would be available for everyone to read in advance.",
    "Preheat the oven to 180 degrees. Whisk the eggs with the sugar until pale, fold in the flour and the "
    "melted butter, pour the batter into a greased tin and bake for forty minutes, until a skewer comes out clean.",
    "The hiking trail climbs steadily through a pine forest for about three kilometres before reaching an open "
    "ridge. From there, walkers can see the lake below and, on clear days, the snow-covered peaks to the north.",
    "Our quarterly report shows that revenue grew by twelve percent, driven mainly by new subscriptions in "
    "Europe. Operating costs remained stable, and the board expects similar growth in the coming year.",
    "To reset your password, open the settings page, choose the security tab and click the reset link. You "
    "will receive an email with a code that is valid for fifteen minutes; enter it to choose a new password.",
    "The match was delayed by rain for almost an hour. When play resumed, the home team scored twice in quick "
    "succession and held on to win despite a late goal from the visitors in the final minute.",
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SWAP_WORDS = (("was", "is"), ("were", "are"), ("the", "a"), ("and", "then"), ("with", "using"))


@dataclass
class NoisyPool:
    """The reference pairs, and the labelled pool (``description``, ``actions``, ``kind``, ``good``)."""

    reference: datasets.Dataset
    pool: datasets.Dataset

    @property
    def n_good(self) -> int:
        return sum(self.pool["good"])


def _pairs(dataset: datasets.Dataset) -> list[tuple[str, str]]:
    return [(row["description"], row["actions"]) for row in dataset if row["description"] and row["actions"]]


def _split_actions(actions: str) -> list[str]:
    return [part.strip() for part in actions.rstrip(".").split("; ") if part.strip()]


def _join_actions(parts: list[str]) -> str:
    return "; ".join(parts) + "."


def _chemicals(actions: str) -> list:
    try:
        return list(iter_chemicals(parse_actions(actions)))
    except ActionParseError:
        return []


def _consistent_edit(description: str, actions: str, names: list[str], rng: random.Random) -> tuple[str, str] | None:
    """Swap a compound named in both texts for another, and rescale numbers shared by both texts."""
    edited_description, edited_actions = description, actions
    shared = [c.name for c in _chemicals(actions) if len(c.name) > 2 and c.name in description and "$" not in c.name]
    if shared:
        old = rng.choice(shared)
        new = rng.choice([name for name in names if name != old and name not in description])
        edited_description, edited_actions = description.replace(old, new), actions.replace(old, new)
    numbers = sorted(set(_NUMBER.findall(edited_actions)) & set(_NUMBER.findall(edited_description)), key=len)
    if numbers:
        factor = rng.choice((0.5, 1.5, 2, 3))
        mapping = {}
        for number in numbers:
            decimals = len(number.split(".")[1]) if "." in number else 0
            mapping[number] = f"{float(number) * factor:.{decimals}f}"
        pattern = re.compile(
            r"(?<![\d.])(" + "|".join(map(re.escape, sorted(mapping, key=len, reverse=True))) + r")(?![\d])"
        )
        edited_description = pattern.sub(lambda m: mapping[m.group(1)], edited_description)
        edited_actions = pattern.sub(lambda m: mapping[m.group(1)], edited_actions)
    if (edited_description, edited_actions) == (description, actions):
        return None
    return edited_description, edited_actions


def _wrong_types(actions: str, rng: random.Random) -> str:
    parts = _split_actions(actions)
    for index in rng.sample(range(len(parts)), k=min(len(parts), rng.choice((1, 2)))):
        keyword, _, rest = parts[index].partition(" ")
        other = rng.choice([name for name in ACTION_NAMES if name != keyword])
        parts[index] = f"{other} {rest}".strip()
    return _join_actions(parts)


def _as_prose(actions: str, rng: random.Random) -> str:
    sentences = []
    for part in _split_actions(actions):
        keyword, _, rest = part.partition(" ")
        sentences.append(f"{keyword.capitalize()} {rest}".strip() + ".")
    joiner = rng.choice((" Then ", " After that, ", " "))
    return joiner.join(sentences)


def _foreign_schema(actions: str, rng: random.Random) -> str:
    steps = [part.partition(" ") for part in _split_actions(actions)]
    if rng.random() < 0.5:
        return json.dumps([{"action": keyword, "content": rest} for keyword, _, rest in steps])
    return "\n".join(f"{index}. **{keyword}** {rest}".rstrip() for index, (keyword, _, rest) in enumerate(steps, 1))


def _near_duplicate(description: str, actions: str, rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        variant = rng.choice((str.lower, lambda text: text.replace(" ", "  "), lambda text: text.rstrip(".")))
        return variant(description), actions
    for old, new in rng.sample(_SWAP_WORDS, k=len(_SWAP_WORDS)):
        if f" {old} " in description:
            return description.replace(f" {old} ", f" {new} ", 1), actions
    return description + " ", actions.lower()


def _repetition(description: str, actions: str, rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        parts = _split_actions(actions)
        return description, _join_actions(parts + [parts[-1]] * rng.randint(8, 15))
    words = description.split()
    phrase = " ".join(words[: min(4, len(words))])
    return " ".join([description.rstrip("."), *[phrase] * rng.randint(6, 12)]), actions


def _ord_paragraphs(data_dir: Path, count: int, rng: random.Random) -> list[str]:
    texts = []
    for _, row in iter_jsonl(data_dir / "ord_r2d" / "reactions.jsonl.gz"):
        text = row.get("procedure_details") or ""
        if len(text.split()) >= 120:
            texts.append(text)
        if len(texts) >= 20 * count:
            break
    return rng.sample(texts, k=count)


def build_noisy_pool(data_dir: str | Path, per_bad_kind: int = 22, seed: int = 0) -> NoisyPool:
    """The reference and a shuffled, labelled pool; deterministic for a given ``seed``."""
    rng = random.Random(seed)
    data_dir = Path(data_dir)
    seeds, examples = load_seeds("paragraph2actions", data_dir), load_examples()
    reference = datasets.concatenate_datasets([seeds["train"], examples["train"]])
    reference = reference.filter(lambda row: bool(row["description"] and row["actions"]))
    reference_pairs = _pairs(reference)
    held_out = [
        pair for split in ("validation", "test") for source in (seeds, examples) for pair in _pairs(source[split])
    ]
    everything = reference_pairs + held_out
    names = sorted({c.name for _, actions in everything for c in _chemicals(actions) if 2 < len(c.name) <= 30})

    rows: list[tuple[str, str, str]] = [(d, a, "real") for d, a in held_out]
    for description, actions in everything:
        edited = _consistent_edit(description, actions, names, rng)
        if edited:
            rows.append((*edited, "consistent_edit"))
    good = list(rows)

    def draw(pool: list, k: int = per_bad_kind) -> list:
        return [rng.choice(pool) for _ in range(k)]

    for description, _ in draw(everything):
        other = rng.choice([actions for d, actions in everything if d != description])
        rows.append((description, other, "mismatched"))
    for description, actions in draw(everything):
        rows.append((description, _wrong_types(actions, rng), "wrong_types"))
    long_enough = [(d, a) for d, a in everything if len(_split_actions(a)) >= 3]
    for description, actions in draw(long_enough):
        parts = _split_actions(actions)
        rows.append((description, _join_actions(parts[: max(1, len(parts) // 3)]), "truncated"))
    paragraphs = _ord_paragraphs(data_dir, per_bad_kind - per_bad_kind // 3, rng)
    paragraphs += [rng.choice(OFF_TOPIC_PROSE) for _ in range(per_bad_kind // 3)]
    for paragraph in paragraphs:
        rows.append((paragraph, rng.choice(everything)[1], "off_domain"))
    for description, actions in draw(everything):
        rows.append((description, _as_prose(actions, rng), "prose"))
    for description, actions in draw(everything):
        rows.append((description, _foreign_schema(actions, rng), "foreign_schema"))
    for description, actions, _ in draw(good):
        rows.append((description, actions, "exact_duplicate"))
    for description, actions, _ in draw(good):
        rows.append((*_near_duplicate(description, actions, rng), "near_duplicate"))
    for description, actions in draw(everything):
        rows.append((*_repetition(description, actions, rng), "repetition"))

    rng.shuffle(rows)
    rows = _first_copy_is_original(rows)
    pool = datasets.Dataset.from_dict(
        {
            "description": [row[0] for row in rows],
            "actions": [row[1] for row in rows],
            "kind": [row[2] for row in rows],
            "good": [row[2] in GOOD_KINDS for row in rows],
        }
    )
    return NoisyPool(reference=reference, pool=pool)


def _first_copy_is_original(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Give the first of identical rows the non-duplicate kind, the later ones ``exact_duplicate``."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, (description, actions, _) in enumerate(rows):
        groups.setdefault((description, actions), []).append(index)
    relabelled = list(rows)
    for indices in groups.values():
        kinds = sorted((rows[i][2] for i in indices), key=lambda kind: kind == "exact_duplicate")
        for index, kind in zip(indices, kinds, strict=True):
            relabelled[index] = (*rows[index][:2], kind)
    return relabelled


# --- a second pool, built another way -------------------------------------------------------------------

GENERATED_GOOD_KINDS = ("held_out_real", "variant_seen_template", "variant_unseen_template")
GENERATED_BAD_KINDS = (
    "contradicting_actions",
    "reference_copy",
    "omitted_steps",
    "invented_step",
    "changed_quantity",
    "few_shot_echo",
    "chatty_answer",
    "loop",
)
# retypings an LLM makes while the text says otherwise: (pattern on one action, replacement)
CONTRADICTIONS: tuple[tuple[str, str], ...] = (
    (r"^STIR\b", "REFLUX"),
    (r"^ADD\b", "WASH with"),
    (r"^WASH\b", "EXTRACT"),
    (r"^EXTRACT\b", "WASH"),
    (r"^COLLECTLAYER organic$", "COLLECTLAYER aqueous"),
    (r"^COLLECTLAYER aqueous$", "COLLECTLAYER organic"),
    (r"^FILTER keep filtrate$", "FILTER keep precipitate"),
    (r"^FILTER keep precipitate$", "FILTER keep filtrate"),
    (r"^PH\b", "QUENCH"),
    (r"^YIELD\b", "ADD"),
    (r"^CONCENTRATE$", "PURIFY"),
    (r"^DRYSOLUTION\b", "WASH"),
)
TRIVIAL_EDITS = (
    lambda text: text.lower(),
    lambda text: text.replace(" ", "  ", 2),
    lambda text: text.rstrip("."),
    lambda text: re.sub(r"\bwas\b", "is", re.sub(r"\bwere\b", "are", text)),
    lambda text: f"Then, {text[0].lower()}{text[1:]}",
)
CHATTY = (
    "Here is the action sequence:\n{}",
    "Sure! The actions are: {}",
    "{}\n\nLet me know if you need anything else.",
    "Actions:\n{}",
)


def _real_pairs(data_dir: Path) -> list[dict[str, str]]:
    """Every annotated (description, actions) pair of Paragraph2Actions and the example set, all splits."""
    pairs = []
    for source in ("paragraph2actions", "examples"):
        splits = load_seeds(source, data_dir)
        for split in splits:
            for row in splits[split]:
                if row["description"] and row["actions"] and "INVALIDACTION" not in row["actions"]:
                    pairs.append({"id": row["id"], "description": row["description"], "actions": row["actions"]})
    return pairs


def _ord_sentences(data_dir: Path, count: int, rng: random.Random) -> list[str]:
    """Single sentences of ORD procedure paragraphs, as an LLM would be asked to annotate them."""
    sentences = []
    for _, row in iter_jsonl(data_dir / "ord_r2d" / "reactions.jsonl.gz"):
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", row.get("procedure_details") or ""):
            if 12 <= len(sentence.split()) <= 50:
                sentences.append(sentence)
        if len(sentences) >= 50 * count:
            break
    return rng.sample(sentences, k=count)


def _contradict(actions: str, rng: random.Random) -> str | None:
    """One or two actions retyped in a way the text contradicts; ``None`` when no rule applies."""
    parts = _split_actions(actions)
    options = [
        (i, pattern, new) for i, part in enumerate(parts) for pattern, new in CONTRADICTIONS if re.search(pattern, part)
    ]
    if not options:
        return None
    for index, pattern, new in rng.sample(options, k=min(len(options), rng.choice((1, 2)))):
        parts[index] = re.sub(pattern, new, parts[index])
    return _join_actions(parts)


def _change_quantity(actions: str, rng: random.Random) -> str | None:
    numbers = [match for match in re.finditer(r"\d+(?:\.\d+)?", actions)]
    if not numbers:
        return None
    match = rng.choice(numbers)
    value = float(match.group()) * rng.choice((0.1, 0.5, 2, 3, 10))
    decimals = len(match.group().split(".")[1]) if "." in match.group() else 0
    return actions[: match.start()] + f"{value:.{decimals}f}" + actions[match.end() :]


def build_generated_pool(data_dir: str | Path, seed: int = 0, reference_size: int = 60, per_bad_kind: int = 40):
    """A pool built another way than :func:`build_noisy_pool`: good rows come from the project's augment
    generator (``AugmentBackend``), the reference is a random ``reference_size`` of the real pairs, and the bad
    rows imitate how LLM generation fails. Every row carries ``meta.crosscheck`` as the generation runner
    writes it. Good kinds: the other real pairs (``held_out_real``) and augment variants of reference pairs
    (``variant_seen_template``) and of held-out pairs (``variant_unseen_template``)."""
    from chemactor.data import dumps_meta
    from chemactor.generation.backends import AugmentBackend
    from chemactor.generation.crosscheck import crosscheck
    from chemactor.selection.text import canonical_text

    rng = random.Random(f"generated-pool-{seed}")
    data_dir = Path(data_dir)
    pairs = _real_pairs(data_dir)
    rng.shuffle(pairs)
    reference_pairs, held_out = pairs[:reference_size], pairs[reference_size:]
    backend = AugmentBackend(reference_pairs, seed=seed)

    def variants(records: list[dict[str, str]], count: int) -> list[tuple[str, str]]:
        found = []
        for record in records:
            for index in range(count):
                description, actions, substitutions = backend.variant(record, index)
                if substitutions and canonical_text(description) != canonical_text(record["description"]):
                    found.append((description, actions))
        return list(dict.fromkeys(found))

    rows: list[tuple[str, str, str]] = [(p["description"], p["actions"], "held_out_real") for p in held_out]
    rows += [(d, a, "variant_seen_template") for d, a in variants(reference_pairs, 3)]
    rows += [(d, a, "variant_unseen_template") for d, a in variants(held_out, 2)]
    good = [(d, a) for d, a, _ in rows]

    def bad(kind: str, make) -> None:
        made, attempts = 0, 0
        while made < per_bad_kind and attempts < 50 * per_bad_kind:
            attempts += 1
            row = make()
            if row is not None:
                rows.append((*row, kind))
                made += 1

    def contradicting():
        description, actions = rng.choice(good)
        changed = _contradict(actions, rng)
        return (description, changed) if changed else None

    def reference_copy():
        pair = rng.choice(reference_pairs)
        edits = rng.sample(TRIVIAL_EDITS, k=rng.choice((1, 2)))
        description = pair["description"]
        for edit in edits:
            description = edit(description)
        return description, pair["actions"]

    def omitted():
        description, actions = rng.choice(good)
        parts = _split_actions(actions)
        if len(parts) < 4:
            return None
        drop = set(rng.sample(range(1, len(parts) - 1), k=rng.choice((1, 2))))
        return description, _join_actions([part for i, part in enumerate(parts) if i not in drop])

    def invented():
        description, actions = rng.choice(good)
        parts = _split_actions(actions)
        other = rng.choice(good)[1]
        extra = rng.choice(
            [p for p in _split_actions(other) if p.split(" ")[0] in ("ADD", "WASH", "EXTRACT", "REFLUX", "QUENCH")]
            or ["REFLUX for 2 h"]
        )
        if extra in parts:
            return None
        parts.insert(rng.randrange(len(parts) + 1), extra)
        return description, _join_actions(parts)

    def changed_quantity():
        description, actions = rng.choice(good)
        changed = _change_quantity(actions, rng)
        return (description, changed) if changed and changed != actions else None

    sentences = iter(_ord_sentences(data_dir, per_bad_kind, rng))

    def few_shot_echo():
        return next(sentences), rng.choice(reference_pairs)["actions"]

    def chatty():
        description, actions = rng.choice(good)
        if rng.random() < 0.5:
            return description, rng.choice(CHATTY).format(actions)
        return description, _foreign_schema(actions, rng)

    def loop():
        return _repetition(*rng.choice(good), rng)

    for kind, make in zip(
        GENERATED_BAD_KINDS,
        (contradicting, reference_copy, omitted, invented, changed_quantity, few_shot_echo, chatty, loop),
        strict=True,
    ):
        bad(kind, make)
    rng.shuffle(rows)
    rows = _first_copy_is_original(rows)
    reference = datasets.Dataset.from_dict(
        {"description": [p["description"] for p in reference_pairs], "actions": [p["actions"] for p in reference_pairs]}
    )
    pool = datasets.Dataset.from_dict(
        {
            "description": [row[0] for row in rows],
            "actions": [row[1] for row in rows],
            "meta": [dumps_meta({"crosscheck": crosscheck(row[1], row[0])}) for row in rows],
            "kind": [row[2] for row in rows],
            "good": [row[2] in GENERATED_GOOD_KINDS for row in rows],
        }
    )
    return NoisyPool(reference=reference, pool=pool)
