"""The one prompt system: every template in chemactor/prompts, loaded by name, rendered strictly, hashed."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

import jinja2
import pytest

import chemactor
from chemactor.data import TASK_FIELDS, prompt_for, task_prompt
from chemactor.errors import ConfigError
from chemactor.examples import example_records
from chemactor.generation import EndpointBackend, GenerationRunner, RunSettings
from chemactor.prompts import NAME, PromptTemplate, load_prompt, prompt_name, prompt_names
from chemactor.scoring.review import Review

EXAMPLES = example_records()
REACTION = next(row for row in EXAMPLES if row["reaction_smiles"] and row["description"])
ROLES = {"reactants": [{"name": "ethanol", "smiles": "CCO"}], "products": [{"name": "", "smiles": "CC=O"}]}

# the values each task's templates are filled with; a shipped task without an entry here fails the test below
VALUES: dict[str, dict] = {
    "r2d": {"examples": [{**REACTION, "roles": ROLES}], "reaction_smiles": "CCO>>CC=O", "roles": ROLES},
    "target": {"examples": [{**REACTION, "target": "CC=O", "target_name": ""}], "target": "CCO", "target_name": "x"},
    "d2a": {"examples": [REACTION], "description": "Stir it.", "action_names": ["ADD", "STIR"]},
    "a2d": {"examples": [REACTION], "actions": "STIR for 2 h."},
    **{f"view_{task}": {fields[0]: " the input \n"} for task, fields in TASK_FIELDS.items()},
    "peer_review": {"task": "the task", "prediction": "ADD water.", "reference": "ADD THF."},
    "peer_review_debate": {
        "task": "the task",
        "prediction": "ADD water.",
        "reference": "ADD THF.",
        "own": Review(0.5, "half"),
        "others": [Review(1.0, "all of it")],
    },
}


def test_every_family_lives_in_the_one_package():
    names = prompt_names()
    assert {"r2d-v1", "target-v1", "d2a-v1", "a2d-v1", "peer_review-v1", "peer_review_debate-v1"} <= set(names)
    assert {f"view_{task}-v1" for task in TASK_FIELDS} <= set(names)
    assert all(NAME.fullmatch(name) for name in names)
    package = Path(chemactor.__file__).parent
    assert {path.parent.name for path in package.rglob("*.jinja")} == {"prompts"}


@pytest.mark.parametrize("name", prompt_names())
def test_every_template_renders_and_refuses_a_missing_value(name):
    prompt = load_prompt(name)
    assert (prompt.task, prompt.version, prompt.name) == (*name.rsplit("-", 1), name)
    assert prompt.task in VALUES, f"add the values {prompt.task} templates take to VALUES"
    text = prompt.render(**VALUES[prompt.task])
    assert text.strip() and "{{" not in text and "{%" not in text and "{#" not in text
    first = next(iter(VALUES[prompt.task]))
    with pytest.raises(jinja2.UndefinedError):
        prompt.render(**{key: value for key, value in VALUES[prompt.task].items() if key != first})


def test_task_views_render_the_input_field_trimmed():
    for task, (field, _) in TASK_FIELDS.items():
        prompt = prompt_for(task, " the input \n")
        assert prompt.endswith("\n\n### Input:\nthe input\n\n### Output:\n")
        assert prompt == task_prompt(task).render(**{field: "the input"})


def test_sha256_is_of_the_shipped_file_and_loads_are_shared():
    for name in prompt_names():
        data = (files("chemactor.prompts") / f"{name}.jinja").read_bytes()
        assert load_prompt(name).sha256 == hashlib.sha256(data).hexdigest()
    assert load_prompt("d2a-v1") is load_prompt("d2a-v1")  # read and compiled once per process


def test_unknown_names_are_config_errors_naming_the_closest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown prompt 'd2a-v2' \(did you mean 'd2a-v1'\?\); known: a2d-v1, "):
        load_prompt("d2a-v2")
    with pytest.raises(ConfigError, match=r"unknown prompt 'peer-review-v1' \(did you mean 'peer_review-v1'\?\)"):
        load_prompt("peer-review-v1")
    with pytest.raises(ConfigError, match=f"unknown prompt 'd2a-v1' in {tmp_path / 'none'}; known: none"):
        load_prompt("d2a-v1", tmp_path / "none")
    assert prompt_name("view_d2a", "v1") == "view_d2a-v1"


def test_a_directory_of_ones_own_replaces_the_shipped_templates(tmp_path):
    (tmp_path / "d2a-v1.jinja").write_text("Actions for: {{ description }}\n", encoding="utf-8")
    (tmp_path / "notes.jinja").write_text("not a versioned name", encoding="utf-8")
    (tmp_path / "README.md").write_text("not a template", encoding="utf-8")
    assert prompt_names(tmp_path) == ["d2a-v1"]
    mine = load_prompt("d2a-v1", tmp_path)
    assert mine.render(description="Stir.") == "Actions for: Stir.\n"
    assert mine.sha256 == hashlib.sha256(b"Actions for: {{ description }}\n").hexdigest()
    assert mine.sha256 != load_prompt("d2a-v1").sha256
    with pytest.raises(ConfigError, match=r"'a2d-v1' in .*; known: d2a-v1"):
        load_prompt("a2d-v1", tmp_path)


def test_provenance_covers_the_values_every_prompt_fills_alike():
    prompt = load_prompt("d2a-v1")
    plain = prompt.provenance()
    assert plain == {"task": "d2a", "version": "v1", "sha256": prompt.sha256}
    one, other = prompt.provenance({"action_names": ["ADD"]}), prompt.provenance({"action_names": ["ADD", "STIR"]})
    assert one["sha256"] == other["sha256"] == prompt.sha256
    assert one["fixed_values_sha256"] != other["fixed_values_sha256"]
    assert PromptTemplate("d2a-v1", prompt.text + " ").provenance()["sha256"] != plain["sha256"]


def test_the_resume_identity_changes_with_the_rendered_instruction(tmp_path):
    """A row's prompt provenance (and the identity a resume checks) follows the instruction the model sees:
    an edited template of one's own under the same name changes it, an unchanged copy does not."""

    def identity(prompts_dir):
        settings = RunSettings(steps="d2a", shots=0, prompts_dir=str(prompts_dir) if prompts_dir else None)
        return GenerationRunner(EndpointBackend("http://127.0.0.1:1"), settings).identity()["prompts"]["d2a"]

    (tmp_path / "same").mkdir()
    (tmp_path / "same" / "d2a-v1.jinja").write_text(load_prompt("d2a-v1").text, encoding="utf-8")
    (tmp_path / "edited").mkdir()
    edited = load_prompt("d2a-v1").text.replace("a robot would execute", "a robot executes")
    (tmp_path / "edited" / "d2a-v1.jinja").write_text(edited, encoding="utf-8")
    assert identity(None) == identity(tmp_path / "same")
    assert identity(None)["sha256"] != identity(tmp_path / "edited")["sha256"]
