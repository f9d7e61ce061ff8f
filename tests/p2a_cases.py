"""Fixed D2A prediction/reference pairs and the values paragraph2actions 1.5.0 computes for them.

The predictions are deterministic perturbations of the reference action strings of the shared data (an
action dropped, two swapped, a number changed, typos, an empty or invalid answer, ...), so no copy of the
data lives in the repository. ``tests/data/p2a_expectations.json`` records what
``paragraph2actions.analysis`` returns on them; ``test_scoring_actions.py`` checks the library against it.

Regenerate (paragraph2actions is not a dependency: install it in a throwaway venv first)::

    python3 -m venv /tmp/p2a
    /tmp/p2a/bin/pip install --no-deps paragraph2actions==1.5.0 textdistance nltk attrs rxn-utils \
        regex joblib click tqdm
    .venv/bin/python tests/p2a_cases.py --p2a-python /tmp/p2a/bin/python

The same file, run by that venv's Python as ``p2a_cases.py compute < pairs.json``, is the side that calls
paragraph2actions; it imports nothing from this project.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

THRESHOLDS = (0.9, 0.75, 0.5)
EXPECTATIONS = Path(__file__).with_name("data") / "p2a_expectations.json"
SEEDS = (0, 1)
PACKAGES = ("paragraph2actions", "nltk", "textdistance")
_VERSIONS = f"import importlib.metadata as m, json; print(json.dumps({{p: m.version(p) for p in {PACKAGES}}}))"


def reference_actions(shared_data: Path) -> list[str]:
    """The 100 Paragraph2Actions target strings (train, valid, test, in file order)."""
    folder = shared_data / "paragraph2actions"
    return [
        line
        for split in ("train", "valid", "test")
        for line in (folder / f"tgt-{split}.txt").read_text(encoding="utf-8").splitlines()
    ]


def _perturb(reference: str, kind: int, rng: random.Random, others: list[str]) -> str:
    actions = reference.removesuffix(".").split("; ")
    if kind == 0:
        return reference
    if kind == 1 and len(actions) > 1:
        del actions[rng.randrange(len(actions))]
    elif kind == 2 and len(actions) > 1:
        i = rng.randrange(len(actions) - 1)
        actions[i], actions[i + 1] = actions[i + 1], actions[i]
    elif kind == 3:
        digits = [i for i, c in enumerate(reference) if c.isdigit()]
        if digits:
            i = rng.choice(digits)
            return reference[:i] + str((int(reference[i]) + 1) % 10) + reference[i + 1 :]
        return reference.replace("ADD", "ADD water;", 1)
    elif kind == 4:
        start = rng.randrange(len(reference))
        return reference[:start] + reference[start + rng.randint(1, 12) :]
    elif kind == 5:
        i = rng.randrange(len(reference))
        return reference[:i] + rng.choice("aeiouxyz ;") + reference[i + 1 :]
    elif kind == 6:
        return reference.lower()
    elif kind == 7:
        return reference.removesuffix(".")
    elif kind == 8:
        return rng.choice(others)
    elif kind == 9:
        return ""
    elif kind == 10:
        return "The mixture was stirred at room temperature overnight."
    elif kind == 11:
        return "CONCENTRATE."
    elif kind == 12:
        return "INVALIDACTION."
    elif kind == 13:
        actions.insert(rng.randrange(len(actions) + 1), rng.choice(actions))
    return "; ".join(actions) + "."


def perturbed_pairs(references: list[str], count: int | None = None, seed: int = 0) -> tuple[list[str], list[str]]:
    """``count`` (default: one per reference) (predictions, references) pairs, deterministic in ``seed``."""
    rng = random.Random(seed)
    count = len(references) if count is None else count
    chosen = [references[i % len(references)] for i in range(count)]
    predictions = [_perturb(reference, rng.randrange(14), rng, references) for reference in chosen]
    return predictions, chosen


def compute() -> None:
    """Run in the paragraph2actions venv: pairs JSON on stdin; values, wall and CPU seconds per function, and
    whether each prediction parses, out."""
    from paragraph2actions import analysis
    from paragraph2actions.conversion_utils import ActionStringConversionError
    from paragraph2actions.readable_converter import ReadableConverter

    pairs = json.load(sys.stdin)
    truth, pred = pairs["references"], pairs["predictions"]
    calls = {
        "full_sentence_accuracy": lambda: analysis.full_sentence_accuracy(truth, pred),
        "levenshtein_similarity": lambda: analysis.levenshtein_similarity(truth, pred),
        "modified_bleu": lambda: analysis.modified_bleu(truth, pred),
        "original_bleu": lambda: analysis.original_bleu(truth, pred),
        "validity": lambda: analysis.action_string_validity(pred),
        **{
            f"partial_accuracy_{t:g}": (lambda t=t: analysis.partial_accuracy(truth, pred, t))
            for t in pairs["thresholds"]
        },
    }
    values, seconds, cpu_seconds = {}, {}, {}
    for name, call in calls.items():
        start, cpu_start = time.perf_counter(), time.process_time()
        values[name] = call()
        seconds[name], cpu_seconds[name] = time.perf_counter() - start, time.process_time() - cpu_start
    converter = ReadableConverter()

    def parses(text: str) -> bool:
        try:
            converter.string_to_actions(text)
        except ActionStringConversionError:
            return False
        return True

    result = {"values": values, "seconds": seconds, "cpu_seconds": cpu_seconds, "parses": list(map(parses, pred))}
    json.dump(result, sys.stdout)


def paragraph2actions_values(
    p2a_python: str, predictions: list[str], references: list[str], thresholds=THRESHOLDS
) -> dict:
    """What paragraph2actions (installed for ``p2a_python``) computes for the pairs, with its timings."""
    pairs = {"predictions": predictions, "references": references, "thresholds": list(thresholds)}
    result = subprocess.run(
        [p2a_python, __file__, "compute"], input=json.dumps(pairs), capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p2a-python", default="/tmp/p2a/bin/python")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    references = reference_actions(args.data_dir)
    versions = json.loads(
        subprocess.run(
            [
                args.p2a_python,
                "-c",
                _VERSIONS,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    cases = []
    for seed in SEEDS:
        predictions, chosen = perturbed_pairs(references, seed=seed)
        cases.append({"seed": seed, "values": paragraph2actions_values(args.p2a_python, predictions, chosen)["values"]})
    EXPECTATIONS.parent.mkdir(exist_ok=True)
    record = {
        "produced_by": ".venv/bin/python tests/p2a_cases.py --p2a-python /tmp/p2a/bin/python",
        "versions": versions,
        "thresholds": list(THRESHOLDS),
        "cases": cases,
    }
    EXPECTATIONS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {EXPECTATIONS}")


if __name__ == "__main__":
    compute() if sys.argv[1:] == ["compute"] else main()
