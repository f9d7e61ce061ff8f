"""Publishing exports to a Hub-protocol server on 127.0.0.1 and loading them back by repo id."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from typer.testing import CliRunner

from chemactor.builders import build_seeds
from chemactor.cli import app
from chemactor.hub import ExportError, PublishError, export_dataset, push_dataset


@pytest.fixture(scope="module")
def small_export(shared_data: Path, tmp_path_factory) -> Path:
    builds = [build_seeds(source, shared_data) for source in ("paragraph2actions", "smiles2actions")]
    return export_dataset(
        {build.source: build.dataset for build in builds},
        tmp_path_factory.mktemp("small") / "export",
        summaries={build.source: build.summary() for build in builds},
    )


def _fingerprint(folder: Path, dotfiles: bool = True) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and (dotfiles or not p.name.startswith("."))
    }


def test_push_then_load_dataset_by_repo_id_row_for_row(hub_env, small_export: Path, tmp_path: Path) -> None:
    url = push_dataset(small_export, "chemactor/seeds-small")
    assert url.startswith(f"{hub_env.endpoint}/datasets/chemactor/seeds-small/commit/")
    api = HfApi()
    assert sorted(api.list_repo_files("chemactor/seeds-small", repo_type="dataset")) == sorted(
        _fingerprint(small_export, dotfiles=False)
    )
    assert len(api.list_repo_commits("chemactor/seeds-small", repo_type="dataset")) == 2  # creation + one push
    assert datasets.get_dataset_config_names("chemactor/seeds-small") == ["paragraph2actions", "smiles2actions"]
    for config in ("paragraph2actions", "smiles2actions"):
        local = datasets.load_dataset(str(small_export), config, cache_dir=str(tmp_path / "local"))
        remote = datasets.load_dataset("chemactor/seeds-small", config, cache_dir=str(tmp_path / "remote"))
        for split in local:
            assert remote[split].to_list() == local[split].to_list()
    # Parquet went through the LFS protocol, the card as a regular file, byte for byte.
    stored = hub_env.repo_files("chemactor/seeds-small")
    assert stored["README.md"] == (small_export / "README.md").read_bytes()
    assert any(method == "PUT" and "/lfs-upload/" in path for method, path, _ in hub_env.requests)


@pytest.mark.slow
def test_ord_export_published_and_loaded(hub_env, seed_builds, tmp_path: Path) -> None:
    build = seed_builds["ord"]
    folder = export_dataset({"ord": build.dataset}, tmp_path / "ord", summaries={"ord": build.summary()})
    result = CliRunner().invoke(app, ["data", "push", str(folder), "--repo-id", "chemactor/ord"])  # private: default
    assert result.exit_code == 0, result.output
    assert hub_env.repos[("dataset", "chemactor/ord")].private
    remote = datasets.load_dataset("chemactor/ord", "ord", cache_dir=str(tmp_path / "cache"))
    for split, rows in build.dataset.items():
        assert remote[split].to_list() == rows.to_list()


def test_refused_token_raises_and_keeps_the_export(hub_env, small_export: Path, monkeypatch) -> None:
    before = _fingerprint(small_export)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(PublishError, match="chemactor/refused") as info:
        push_dataset(small_export, "chemactor/refused")
    assert info.value.status == 401
    assert _fingerprint(small_export) == before
    assert ("dataset", "chemactor/refused") not in hub_env.repos


def test_server_error_during_commit_raises_and_keeps_the_export(hub_env, small_export: Path) -> None:
    before = _fingerprint(small_export)
    hub_env.fail(500, path_contains="/commit/", method="POST")
    with pytest.raises(PublishError) as info:
        push_dataset(small_export, "chemactor/broken")
    assert info.value.status == 500
    assert _fingerprint(small_export) == before
    # Nothing half-written: the repo exists (created first) but holds no commit beyond its creation.
    assert len(hub_env.repos[("dataset", "chemactor/broken")].commits) == 1
    # The same push succeeds once the server recovers.
    push_dataset(small_export, "chemactor/broken")
    assert "README.md" in hub_env.repo_files("chemactor/broken")


def test_cli_push_reports_failures_and_refuses_non_exports(hub_env, small_export: Path, tmp_path: Path) -> None:
    hub_env.fail(503, path_contains="/api/repos/create")
    result = CliRunner().invoke(app, ["data", "push", str(small_export), "--repo-id", "chemactor/cli"])
    assert result.exit_code == 1 and "503" in result.output
    (tmp_path / "notes.txt").write_text("not a dataset", encoding="utf-8")
    with pytest.raises(ExportError, match="not a dataset export"):
        push_dataset(tmp_path, "chemactor/notes")


def test_private_repos_and_downloads_behave_like_the_hub(hub_env, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo("chemactor/tiny-model", private=True)
    (tmp_path / "config.json").write_text('{"a": 1}', encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes(bytes(range(256)) * 10)
    api.upload_folder(repo_id="chemactor/tiny-model", folder_path=tmp_path)
    path = hf_hub_download("chemactor/tiny-model", "model.safetensors", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == bytes(range(256)) * 10
    assert api.repo_info("chemactor/tiny-model").private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).repo_info("chemactor/tiny-model")
    with pytest.raises(HfHubHTTPError) as refused:
        HfApi(token="hf_wrong").repo_info("chemactor/tiny-model")
    assert refused.value.response.status_code == 401


def test_push_uploads_only_the_exported_files_to_a_private_repo_unless_public(
    hub_env, small_export: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    shutil.copytree(small_export, folder)
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n", encoding="utf-8")
    (folder / "notes.txt").write_text("my notes", encoding="utf-8")
    (folder / "paragraph2actions" / "scratch.parquet").write_bytes(b"not part of the export")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "state.json").write_text("{}", encoding="utf-8")

    result = CliRunner().invoke(app, ["data", "push", str(folder), "--repo-id", "chemactor/careful"])
    assert result.exit_code == 0, result.output
    stored = hub_env.repo_files("chemactor/careful")
    manifest = json.loads((folder / ".chemactor-export.json").read_text(encoding="utf-8"))["files"]
    assert sorted(stored) == sorted(manifest) and "README.md" in stored
    assert hub_env.repos[("dataset", "chemactor/careful")].private

    result = CliRunner().invoke(app, ["data", "push", str(folder), "--repo-id", "chemactor/open", "--public"])
    assert result.exit_code == 0, result.output
    assert not hub_env.repos[("dataset", "chemactor/open")].private
    assert ".env" not in hub_env.repo_files("chemactor/open")
