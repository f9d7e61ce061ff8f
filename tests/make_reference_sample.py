"""Write the reference data the repository ships (``tests/data/reference/``) from a full copy of it.

The two IBM sets are small and are copied whole. Of the 14,251 ORD reactions a few hundred are kept: every
reaction whose normalized procedure text falls in a fixed hash bucket (so reactions that share a patent
paragraph are kept or dropped together, and the text-disjoint splits still have shared texts to keep apart),
plus every reaction without SMILES (so the build's drop counting has rows to count). The file is written
with a fixed gzip time stamp, so rerunning it reproduces the same bytes::

    .venv/bin/python tests/make_reference_sample.py /path/to/full/data
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
from pathlib import Path

TARGET = Path(__file__).with_name("data") / "reference"
IBM_SETS = ("paragraph2actions", "smiles2actions")
ORD_BUCKETS = 40  # keeps ~1 in 40 procedure texts: 390 reactions


def _bucket(text: str) -> int:
    normalized = " ".join(text.lower().split())
    return int(hashlib.sha256(f"{normalized}|sample".encode()).hexdigest(), 16) % ORD_BUCKETS


def ord_sample(lines: list[str]) -> list[str]:
    """The ORD lines kept, in their original order."""
    kept = []
    for line in lines:
        row = json.loads(line)
        if not row["reaction_smiles_unmapped"] or _bucket(row["procedure_details"]) == 0:
            kept.append(line)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full_data", type=Path, help="a full copy of the reference data (e.g. ../shared/data)")
    args = parser.parse_args()
    for name in IBM_SETS:
        shutil.rmtree(TARGET / name, ignore_errors=True)
        shutil.copytree(args.full_data / name, TARGET / name)
    (TARGET / "ord_r2d").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.full_data / "ord_r2d" / "LICENSE.md", TARGET / "ord_r2d" / "LICENSE.md")
    with gzip.open(args.full_data / "ord_r2d" / "reactions.jsonl.gz", "rt", encoding="utf-8") as handle:
        kept = ord_sample(handle.read().splitlines(keepends=True))
    with (
        open(TARGET / "ord_r2d" / "reactions.jsonl.gz", "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle,
    ):
        handle.write("".join(kept).encode("utf-8"))
    print(f"{len(kept)} ORD reactions -> {TARGET / 'ord_r2d'}")


if __name__ == "__main__":
    main()
