"""An example run from target molecules through the TGI-protocol server, with the cross-check verdicts.

Twenty products of reference ORD reactions are written to a ``.smi`` file (with their names, and one line
that RDKit cannot read), and ``chemactor generate --input targets.smi`` runs the chain against
``tests/tgi_server.py``. The server plays a scripted chemist, not a language model: asked for a target's
procedure it answers with the ORD procedure that made the product, each reactant's SMILES in brackets after
its first mention (as the target prompt asks); asked for actions it answers ``ADD name (amounts)`` for each
compound the text gives amounts for and ``YIELD`` for the product. What the run shows is the plumbing: the
line-numbered report of the bad line, the failed item, and the verdicts the target cross-check records.

    python -m benchmarks.targets_example [--data-dir tests/data/reference] [--count 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from chemactor.chem import COMPONENT_ROLES, canonicalize_smiles
from chemactor.stoichiometry import mentions_from_text

ROOT = Path(__file__).resolve().parents[1]


def pick_reactions(data_dir: Path, count: int) -> list[dict]:
    """Reactions whose product is named and whose text gives amounts for named reactants."""
    chosen: dict[str, dict] = {}
    with gzip.open(data_dir / "ord_r2d" / "reactions.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            products = [c for c in row["products"] if c.get("name") and c.get("smiles")]
            text = row["procedure_details"]
            named = [c for c in row["reactants"] if c.get("name") and c["name"] in text]
            if len(products) == 1 and named and products[0]["name"] in text and len(mentions_from_text(text)) >= 2:
                target = canonicalize_smiles(products[0]["smiles"])
                chosen.setdefault(target, row)
            if len(chosen) == count:
                break
    return list(chosen.values())


def scripted_answers(rows: list[dict]) -> dict[str, dict[str, str]]:
    """Per target SMILES: the procedure (reactant SMILES in brackets) and the actions a careful reader writes."""
    answers = {}
    for row in rows:
        text = row["procedure_details"]
        for component in (c for role in COMPONENT_ROLES[:-1] for c in row[role] if c.get("name") and c.get("smiles")):
            text = text.replace(component["name"], f"{component['name']} [{component['smiles']}]", 1)
        product = row["products"][0]["name"]
        actions = []
        for mention in mentions_from_text(row["procedure_details"]):
            amounts = ", ".join(quantity.text for quantity in mention.quantities)
            name = re.sub(r"^.*\b(?:of|to|with|added|and|give|afford|afforded|gave|yield)\s+", "", mention.name)
            keyword = "YIELD" if product.lower() in mention.name.lower() else "ADD"
            actions.append(f"{keyword} {product if keyword == 'YIELD' else name} ({amounts})")
        answers[canonicalize_smiles(row["products"][0]["smiles"])] = {
            "procedure": text,
            "actions": "; ".join(actions) + ".",
        }
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "tests" / "data" / "reference")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    rows = pick_reactions(args.data_dir, args.count)
    work = Path(tempfile.mkdtemp(prefix="chemactor-targets-"))
    answers = scripted_answers(rows)
    lines = ["SMILES Name"] + [f"{r['products'][0]['smiles']} {r['products'][0]['name']}" for r in rows]
    lines.insert(6, "C1CC(=O broken line")
    smi = work / "targets.smi"
    smi.write_text("\n".join(lines) + "\n")

    def respond(kind: str, payload: dict) -> str:
        prompt = payload["messages"][-1]["content"] if kind == "chat" else payload["inputs"]
        if "### Target" in prompt:
            target = prompt.rsplit("### Target\n", 1)[1].split("\n")[0].split(" (")[0]
            return answers[target]["procedure"]
        description = prompt.rsplit("### Procedure\n", 1)[1].split("\n### Actions")[0]
        return next(answer["actions"] for answer in answers.values() if answer["procedure"] == description)

    sys.path.insert(0, str(ROOT / "tests"))
    from tgi_server import TGIServer

    with TGIServer(respond) as server:
        command = [sys.executable, "-m", "chemactor.cli", "generate", "--input", str(smi), "-o", str(work / "out")]
        command += ["--endpoints", server.url, "--api", "generate"]
        env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"} | {"PYTHONPATH": str(ROOT)}
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    print(result.stderr.strip().splitlines()[0] if result.stderr.strip() else "")
    print(result.stdout.strip())
    generated = [json.loads(line) for path in sorted((work / "out" / "shards").glob("*.jsonl")) for line in path.open()]
    failures = [json.loads(line) for path in (work / "out" / "failures").glob("*") for line in path.open()]
    counts: Counter[str] = Counter()
    print("\n| target | reaction SMILES (resolved) | passed | checks failed | first reason |")
    print("|---|---|---|---|---|")
    for row in sorted(generated, key=lambda row: int(row["id"].split("-")[-1].split("/")[0])):
        verdict = json.loads(row["meta"])["crosscheck"]
        failed = [name for name, ok in verdict["checks"].items() if not ok]
        counts.update(f"{name}={'ok' if ok else 'FAIL'}" for name, ok in verdict["checks"].items())
        reason = verdict["reasons"][0][:70] if verdict["reasons"] else ""
        print(f"| {row['id']} | {row['reaction_smiles'][:60]} | {verdict['passed']} | {', '.join(failed)} | {reason} |")
    print("\nfailed items:", [(f["id"], f["error"]["kind"], f["error"]["message"][-60:]) for f in failures])
    print("check totals:", dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
