"""Generation from target molecules: .smi files, single-molecule records and Python lists, through a TGI server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from chemactor.builders import read_records
from chemactor.builders.targets import target_records
from chemactor.chem import reaction_target, smiles_in_text
from chemactor.data import get_meta, make_record
from chemactor.examples import example_records
from chemactor.generation import EndpointBackend, GenerationRunner, RunSettings, crosscheck
from chemactor.generation.runner import run_from_config

ETHER = "Brc1ccc(OCc2ccccc2)cc1"
ETHER_PROCEDURE = (
    "Sodium hydride [[H-].[Na+]] (60% in mineral oil, 0.48 g, 12.0 mmol) was added to 4-bromophenol "
    "[Oc1ccc(Br)cc1] (1.73 g, 10.0 mmol) in DMF (20 mL) at 0 °C, then benzyl bromide [BrCc1ccccc1] "
    "(1.88 g, 11.0 mmol) was added and the mixture was stirred for 4 h. Work-up gave "
    "1-(benzyloxy)-4-bromobenzene (2.42 g, 92%)."
)
ETHER_ACTIONS = (
    "ADD 4-bromophenol (1.73 g, 10.0 mmol); ADD DMF (20 mL); "
    "ADD Sodium hydride (60% in mineral oil, 0.48 g, 12.0 mmol) at 0 °C; ADD benzyl bromide (1.88 g, 11.0 mmol); "
    "STIR for 4 h; YIELD 1-(benzyloxy)-4-bromobenzene (2.42 g, 92%)."
)
# an LLM that gets it wrong: a SMILES that does not parse, and the product never named
WRONG_PROCEDURE = "Aniline [c1ccc(cc1N] (0.93 g, 10 mmol) was stirred in water (10 mL) for 1 h and filtered."
WRONG_ACTIONS = "ADD Aniline (0.93 g, 10 mmol); ADD water (10 mL); STIR for 1 h; FILTER."
ANSWERS = {ETHER: (ETHER_PROCEDURE, ETHER_ACTIONS), "CC(=O)Nc1ccccc1": (WRONG_PROCEDURE, WRONG_ACTIONS)}


def target_responder(kind: str, payload: dict) -> str:
    """A model that knows two targets: their procedure for the target prompt, their actions for D2A."""
    prompt = payload["messages"][-1]["content"] if kind == "chat" else payload["inputs"]
    if "### Target" in prompt:
        target = prompt.rsplit("### Target\n", 1)[1].split("\n")[0].split(" (")[0]
        return ANSWERS[target][0]
    description = prompt.rsplit("### Procedure\n", 1)[1].split("\n### Actions")[0]
    return next(actions for procedure, actions in ANSWERS.values() if procedure == description)


def _rows(output_dir: Path, folder: str = "shards") -> list[dict]:
    return [json.loads(line) for path in sorted((output_dir / folder).glob("*")) for line in path.open()]


def test_a_target_is_one_molecule_or_a_product_only_reaction() -> None:
    assert reaction_target("OCC") == "CCO" and reaction_target(">>OCC") == "CCO"
    assert reaction_target("CCO>>CC=O") is None
    assert smiles_in_text("benzene [c1ccccc1] and SOCl2 [C1CC(] with CCl4") == [
        ("c1ccccc1", "c1ccccc1"),
        ("C1CC(", None),
    ]


def test_the_target_crosscheck_finds_the_target_and_builds_the_reaction() -> None:
    target = {"smiles": ETHER, "name": "1-(benzyloxy)-4-bromobenzene"}
    verdict = crosscheck(ETHER_ACTIONS, ETHER_PROCEDURE, target=target)
    assert verdict["passed"], verdict["reasons"]
    assert verdict["checks"]["target_yielded"] and verdict["checks"]["named_smiles_parse"]
    assert verdict["checks"]["amounts_agree"]
    assert verdict["reaction_smiles"] == f"[H-].[Na+].Oc1ccc(Br)cc1.BrCc1ccccc1>>{ETHER}"
    # the target named by SMILES only counts too; a changed amount is caught through the named SMILES
    by_smiles = crosscheck(
        ETHER_ACTIONS, ETHER_PROCEDURE.replace("1-(benzyloxy)-4-bromobenzene", ETHER), target=target | {"name": ""}
    )
    assert by_smiles["checks"]["target_yielded"]
    changed = crosscheck(
        ETHER_ACTIONS.replace("1.73 g", "2.73 g"), ETHER_PROCEDURE.replace("1.73 g", "2.73 g"), target=target
    )
    assert changed["checks"]["amounts_agree"] is False
    wrong = crosscheck(WRONG_ACTIONS, WRONG_PROCEDURE, target={"smiles": "CC(=O)Nc1ccccc1", "name": "acetanilide"})
    assert wrong["checks"]["target_yielded"] is False and wrong["checks"]["named_smiles_parse"] is False
    assert wrong["reasons"] == [
        "target: SMILES does not parse: c1ccc(cc1N",
        "target: neither a YIELD action nor the text names the target acetanilide",
    ]


def test_generate_from_a_smi_file(tgi_server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = tgi_server(target_responder)
    targets = tmp_path / "targets.smi"
    lines = ["SMILES Name", f"{ETHER} 1-(benzyloxy)-4-bromobenzene", "# a comment", "C1CC(N broken one", ""]
    targets.write_text("\n".join([*lines, "CC(=O)Nc1ccccc1 acetanilide", ""]))
    config = {"input": str(targets), "output_dir": str(tmp_path / "out"), "endpoints": [server.url], "api": "generate"}
    with caplog.at_level(logging.WARNING):
        summary = run_from_config(config | {"shots": 1}, progress=False)
    assert f"{targets}:4: invalid target SMILES 'C1CC(N'" in caplog.text  # reported with its line number
    assert summary.done == 2 and dict(summary.failed) == {"invalid_smiles": 1}
    assert (
        sum(server.requests.values()) == 4
    )  # a target prompt and a D2A prompt for each valid line; none for the bad one
    failure = _rows(tmp_path / "out", "failures")[0]
    assert failure["id"] == "targets-4/0" and failure["error"]["kind"] == "invalid_smiles"
    assert f"{targets}:4" in failure["error"]["message"]
    ether, wrong = sorted(_rows(tmp_path / "out"), key=lambda row: row["id"])
    meta = get_meta(ether)
    assert meta["target"] == {"smiles": ETHER, "name": "1-(benzyloxy)-4-bromobenzene"}
    assert ether["reaction_smiles"] == f"[H-].[Na+].Oc1ccc(Br)cc1.BrCc1ccccc1>>{ETHER}"
    assert ether["description"] == ETHER_PROCEDURE and ether["actions"] == ETHER_ACTIONS
    assert meta["crosscheck"]["passed"] and meta["prompts"]["target"]["version"] == "v1"
    assert wrong["reaction_smiles"] == ">>CC(=O)Nc1ccccc1"  # nothing resolved: the target at least
    assert get_meta(wrong)["crosscheck"]["checks"]["target_yielded"] is False


def test_targets_from_python_and_single_molecule_records(tgi_server, tmp_path: Path) -> None:
    server = tgi_server(target_responder)
    backend = EndpointBackend(server.url, api="generate", backoff=0.001, max_backoff=0.01)
    runner = GenerationRunner(backend, RunSettings(steps="chain", shots=1), examples=example_records())
    inputs = [*target_records([(ETHER, "1-(benzyloxy)-4-bromobenzene")])]
    inputs.append(make_record(id="molecule", source="user", reaction_smiles="CC(=O)Nc1ccccc1"))
    summary = runner.run(inputs, tmp_path / "out", progress=False)
    assert summary.done == 2
    rows = {row["id"]: row for row in read_records(tmp_path / "out").to_list()}
    assert rows["target-000001/0"]["reaction_smiles"].endswith(f">>{ETHER}")
    assert get_meta(rows["molecule/0"])["target"] == {"smiles": "CC(=O)Nc1ccccc1", "name": ""}
