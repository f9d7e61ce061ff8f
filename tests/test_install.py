"""The package as a user installs it: the light core imports no training stack, a wheel carries its
resources, and the metric Spaces load with ``evaluate.load`` in an environment that has no torch.

Imports are checked in a fresh interpreter (``sys.modules`` of this one holds whatever earlier tests
loaded), run outside the checkout so that it imports the same ``chemactor`` as this process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download
from typer.testing import CliRunner

import chemactor
from chemactor.cli import app
from chemactor.scoring import action_metrics, circle_scores, procedure_metrics

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = Path(__file__).with_name("data") / "reference"
METRICS = ("action_extraction", "procedure_generation", "circle_review")
HEAVY = {"torch", "transformers", "trl", "accelerate", "tokenizers"}
UPPER_LAYERS = {"chemactor.generation", "chemactor.training", "chemactor.inference", "chemactor.evaluation"}
LIGHT = ("chemactor.actions", "chemactor.builders", "chemactor.chem", "chemactor.data", "chemactor.scoring")
LIGHT += ("chemactor.selection", "chemactor.hub", "chemactor.prompts")


def _loaded_by(code: str, cwd: Path) -> dict[str, list[str]]:
    """Modules a fresh interpreter holds after ``code``: ``{"before": [...], "after": [...]}`` where ``code``
    may set ``before`` (a snapshot of ``sys.modules`` after its own set-up)."""
    program = (
        f"import json, sys\nbefore = []\n{code}\nprint(json.dumps({{'before': before, 'after': list(sys.modules)}}))"
    )
    result = subprocess.run(
        [sys.executable, "-B", "-c", program], cwd=cwd, capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", LIGHT)
def test_light_layers_import_neither_torch_nor_the_layers_above(module, tmp_path):
    loaded = set(_loaded_by(f"import {module}", tmp_path)["after"])
    assert not loaded & (HEAVY | UPPER_LAYERS)


@pytest.mark.parametrize("name", METRICS)
def test_metric_modules_import_only_the_light_core(name, tmp_path):
    """A metric module (as the package ships it) brings no generation or training stack of its own. The
    ``evaluate`` package itself imports transformers when that happens to be installed, so heavy modules
    are judged by what the module adds after ``evaluate``; the slow test below runs it without torch."""
    source = files("chemactor") / "resources" / "metrics" / name / f"{name}.py"
    code = (
        "import importlib.util, evaluate, datasets\n"
        "before = list(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('{name}', {str(source)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))"
    )
    loaded = _loaded_by(code, tmp_path)
    assert not set(loaded["after"]) & UPPER_LAYERS
    assert not (set(loaded["after"]) - set(loaded["before"])) & HEAVY


def test_commands_that_need_the_train_extra_say_so_in_one_line(tmp_path):
    """Without trl (hidden from the import system here; absent in a core install) ``chemactor train`` exits 1
    with the line that installs the extra, before touching anything."""
    recipe = REPO_ROOT / "recipes" / "sft_cpu_tiny.yaml"
    code = (
        "import sys\nsys.modules['trl'] = None\n"
        f"sys.argv = ['chemactor', 'train', {str(recipe)!r}, '--output_dir', 'out']\n"
        "from chemactor.cli import main\nmain()"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: chemactor train needs the 'train' extra (trl not installed): pip install 'chemactor[train]' "
        "(install the CPU or CUDA torch build you want first)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    not os.environ.get("CHEMACTOR_TEST_INSTALLED"), reason="set by .ci/run, which tests the installed wheel"
)
def test_the_installed_package_is_under_test():
    """CI installs the wheel (not editable) and runs the tests from a checkout: the tests must import the
    installed package, or a file missing from the wheel would go unnoticed."""
    location = Path(chemactor.__file__).resolve()
    assert "site-packages" in location.parts
    assert REPO_ROOT / "chemactor" not in location.parents  # CI's venv lies inside the checkout


def _wheel(tmp_path: Path) -> Path:
    """The wheel CI built (``$CHEMACTOR_WHEEL``), else one built from a clean copy of this checkout (an
    in-place build would leave ``build/`` and ``*.egg-info`` behind, which later builds and pip would see)."""
    if os.environ.get("CHEMACTOR_WHEEL"):
        return Path(os.environ["CHEMACTOR_WHEEL"])
    source = tmp_path / "source"
    skipped = shutil.ignore_patterns(".*", "build", "dist", "outputs", "*.egg-info", "__pycache__")
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=skipped)
    wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"), str(source)]
    subprocess.run(wheel, check=True, timeout=600)
    return next((tmp_path / "dist").glob("chemactor-*.whl"))


def test_wheel_carries_prompts_card_templates_and_metric_sources(tmp_path):
    """The prompt templates, and the top-level model_cards/ and metrics/ (the sources): the wheel carries them
    byte for byte, so a generated row's prompt hash means the same installed as in a checkout."""
    with zipfile.ZipFile(_wheel(tmp_path)) as wheel:
        templates = sorted((REPO_ROOT / "chemactor" / "prompts").glob("*.jinja"))
        assert len(templates) >= 10
        for template in templates:
            assert wheel.read(f"chemactor/prompts/{template.name}") == template.read_bytes()
        for template in ("dataset_card.md", "model_card.md"):
            source = REPO_ROOT / "model_cards" / template
            assert wheel.read(f"chemactor/resources/model_cards/{template}") == source.read_bytes()
        for name in METRICS:
            for file in (f"{name}.py", "app.py", "README.md", "requirements.txt"):
                source = REPO_ROOT / "metrics" / name / file
                assert wheel.read(f"chemactor/resources/metrics/{name}/{file}") == source.read_bytes()


def _close(actual, expected) -> bool:
    """Equal up to float rounding, through nested dicts and lists (pytest.approx stops at one level)."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(_close(actual[key], value) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(_close, actual, expected))
    if isinstance(expected, float):
        return actual == pytest.approx(expected, rel=1e-9, abs=1e-12)
    return actual == expected


D2A = {
    "predictions": ["ADD THF (10 mL); STIR for 2 h at 25 °C; CONCENTRATE.", "FILTER; WASH with water."],
    "references": ["ADD THF (10 mL); STIR for 3 h at 25 °C; CONCENTRATE.", "FILTER; WASH with ethanol."],
}
R2D = {
    "predictions": ["NaH (5 mmol) was added to THF (10 mL) at 0 °C and stirred for 2 h."],
    "references": ["To THF (10 ml) at 0 °C was added NaH (0.5 mmol); the mixture was stirred for 2 hours."],
}
CIRCLE = {
    "predictions": [["ADD water; STIR for 2 h; FILTER.", "ADD water; STIR for 2 h.", "ADD water."]],
    "references": ["ADD water; STIR for 2 h; FILTER."],
    "descriptions": [["Water was added.", "Water was added and stirred.", "Water.", "Water was added."]],
}
INPUTS = {"action_extraction": D2A, "procedure_generation": R2D, "circle_review": CIRCLE}

_LOAD_EVERY_METRIC = """
import importlib.util, json, sys, evaluate
inputs = json.loads(sys.argv[1])
scores = {repo: evaluate.load(repo).compute(**kwargs) for repo, kwargs in inputs.items()}
import chemactor
print(json.dumps({"scores": scores, "chemactor": chemactor.__file__,
                  "torch": importlib.util.find_spec("torch") is not None, "modules": list(sys.modules)}))
"""


@pytest.mark.slow
def test_pushed_metric_spaces_load_without_torch(hub_env, tmp_path):
    """Each metric pushed with the command line; then a fresh venv installs what its Space asks for (the
    requirements.txt from the server, the core found in the built wheel's folder, no torch) and loads all
    three by repo id from the server: the values are the library's."""
    wheel = _wheel(tmp_path)
    user = "chemactor-metrics"
    for name in METRICS:
        result = CliRunner().invoke(app, ["metrics", "push", name, "--repo-id", f"{user}/{name}"])
        assert result.exit_code == 0, result.output
    requirements = Path(hf_hub_download(f"{user}/action_extraction", "requirements.txt", repo_type="space"))
    assert f"chemactor=={chemactor.__version__}" in requirements.read_text(encoding="utf-8").splitlines()
    for name in METRICS:
        card = Path(hf_hub_download(f"{user}/{name}", "README.md", repo_type="space")).read_text(encoding="utf-8")
        front = card.split("---\n")[1]
        assert "sdk: gradio" in front and "app_file: app.py" in front and "- evaluate\n- metric" in front

    # Nothing of this process's Python set-up (PYTHONPATH pointing at a checkout, say) may leak into the venv.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_EVALUATE_OFFLINE", "PYTHON"))}
    env.update(HF_UPDATE_DOWNLOAD_COUNTS="0", HF_HOME=str(tmp_path / "hf-home"))  # evaluate's module cache too
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    install = [str(venv / "bin" / "pip"), "install", "--quiet", "--find-links", str(wheel.parent), "-r"]
    subprocess.run([*install, str(requirements)], check=True, timeout=900, env=env, cwd=tmp_path)
    inputs = {f"{user}/{name}": kwargs for name, kwargs in INPUTS.items()}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _LOAD_EVERY_METRIC, json.dumps(inputs)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert not loaded["torch"] and not set(loaded["modules"]) & (HEAVY | UPPER_LAYERS)
    assert Path(loaded["chemactor"]).is_relative_to(venv)
    expected = {
        "action_extraction": action_metrics(**D2A),
        "procedure_generation": procedure_metrics(**R2D),
        "circle_review": circle_scores(CIRCLE["predictions"], CIRCLE["references"], CIRCLE["descriptions"]),
    }
    for name, values in expected.items():
        assert _close(loaded["scores"][f"{user}/{name}"], json.loads(json.dumps(values))), name

    # The core's commands work there; those that need the extra name it.
    chemactor_command = str(venv / "bin" / "chemactor")
    build = [chemactor_command, "data", "build", "--source", "paragraph2actions", "--data-dir"]
    result = subprocess.run([*build, str(SHIPPED), "-o", "out"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(path.name for path in (tmp_path / "out" / "paragraph2actions").iterdir())[0].startswith("test-")
    train = [chemactor_command, "train", str(REPO_ROOT / "recipes" / "sft_cpu_tiny.yaml")]
    result = subprocess.run(train, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "pip install 'chemactor[train]'" in result.stderr
