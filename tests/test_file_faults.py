"""Files under faults: kills, full disks, torn lines, foreign output files, bad input files, read-only folders.

Every command here runs as a real subprocess (``python -m chemactor.cli``), the way a user meets it, and
talks to a real TGI-protocol server on 127.0.0.1 where a model is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chemactor.data import AppendLog, repair_jsonl
from chemactor.errors import OutputError, ResumeError
from chemactor.inference import convert_file

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, limit_bytes: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``chemactor ARGS`` in a fresh process; ``limit_bytes`` caps the size of any file it writes."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_ENDPOINT": "http://127.0.0.1:9"}
    env.pop("HF_HUB_OFFLINE", None)  # offline mode refuses loopback endpoints too

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "chemactor.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit if limit_bytes else None,
        timeout=300,
        **kwargs,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line a user error prints (no traceback), for exit code 1."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def output_rows(path: Path) -> list[dict]:
    """Every line of ``path`` as JSON: fails if any line is torn or glued to another."""
    data = path.read_text(encoding="utf-8")
    assert not data or data.endswith("\n")
    return [json.loads(line) for line in data.splitlines()]


def sentences(count: int) -> list[str]:
    return [f"The mixture number {index} was stirred for {index % 5 + 1} h." for index in range(count)]


def stir(kind: str, payload: dict) -> str:
    return "STIR.\n"


# --- the append-only writer --------------------------------------------------------------------------------


def test_append_log_cuts_a_torn_last_line_and_resumes_by_id(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    with AppendLog(path) as log:
        for index in range(3):
            log.append({"id": f"r{index}", "text": "x" * 100})
    with path.open("ab") as handle:  # what a kill in the middle of a multi-part write leaves behind
        handle.write(b'{"id": "r3", "te')
    log = AppendLog(path)
    assert log.repaired == len(b'{"id": "r3", "te')
    assert list(log.ids()) == ["r0", "r1", "r2"]
    log.append({"id": "r3", "text": "y"})
    log.close()
    assert [row["id"] for row in output_rows(path)] == ["r0", "r1", "r2", "r3"]
    assert repair_jsonl(path) == 0 and repair_jsonl(tmp_path / "absent.jsonl") == 0


def test_a_torn_line_longer_than_a_block_is_cut_whole(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": 1}\n' + b'{"id": 2, "t": "' + b"z" * 200_000)
    assert repair_jsonl(path) == 200_016 and path.read_bytes() == b'{"id": 1}\n'
    path.write_bytes(b"no newline at all")
    assert repair_jsonl(path) == 17 and path.read_bytes() == b""


def _convert(chunk: list[str]) -> list[dict]:
    return [{"description": text, "actions": "STIR.", "valid": True} for text in chunk]


def test_convert_file_resumes_after_a_torn_line_each_input_once(tmp_path: Path, caplog) -> None:
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    texts = sentences(10)
    source.write_text("\n".join(texts[:4]) + "\n\n" + "\n".join(texts[4:]) + "\n", encoding="utf-8")
    assert convert_file(_convert, source, target, "description", chunk_size=3) == 10
    rows = output_rows(target)
    target.write_text("".join(json.dumps(row) + "\n" for row in rows[:4]) + json.dumps(rows[4])[:25], encoding="utf-8")

    assert convert_file(_convert, source, target, "description", chunk_size=3) == 6
    assert "out.jsonl: cut a torn last line (25 bytes)" in caplog.text
    rows = output_rows(target)
    assert [row["description"] for row in rows] == texts
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]  # line 5 is blank
    assert convert_file(_convert, source, target, "description") == 0


def test_convert_file_retries_failed_lines_only_when_asked(tmp_path: Path) -> None:
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    texts = sentences(5)
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")

    def flaky(chunk: list[str]) -> list[dict]:
        return [
            {**row, "failure": "unreachable" if "number 1 " in row["description"] else None} for row in _convert(chunk)
        ]

    assert convert_file(flaky, source, target, "description") == 5
    assert convert_file(_convert, source, target, "description") == 0
    assert convert_file(_convert, source, target, "description", retry_failed=True) == 1
    rows = output_rows(target)
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5, 2]
    assert rows[1]["failure"] == "unreachable" and "failure" not in rows[-1]
    assert convert_file(_convert, source, target, "description", retry_failed=True) == 0


@pytest.mark.parametrize(
    "content",
    [
        '{"kept": "from another run"}\n',  # unrelated rows
        '{"line": 1, "description": "Some other input."}\n',  # another input file's output
        '{"line": 1, "description": "The mixture number 0 was stirred for 1 h."}\nnot json\n{"line": 2}\n',
        '{"line": 1, "description": "The mixture number 0 was stirred for 1 h."}\n' * 2,  # a line twice
    ],
)
def test_convert_file_never_appends_to_a_file_that_is_not_its_output(tmp_path: Path, content: str) -> None:
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("\n".join(sentences(3)) + "\n", encoding="utf-8")
    target.write_text(content + '{"torn', encoding="utf-8")
    before = target.read_bytes()
    with pytest.raises(ResumeError, match=r"out\.jsonl:\d+: .*refusing to append"):
        convert_file(_convert, source, target, "description")
    assert target.read_bytes() == before


# --- kills and full disks, through the command line ---------------------------------------------------------


def test_extract_killed_mid_run_then_rerun_converts_every_input_exactly_once(tgi_server, tmp_path: Path) -> None:
    server = tgi_server(responder=stir, latency=0.5)
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    texts = sentences(300)
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    args = ["extract", "--endpoint", server.url, "--api", "generate", "--input", str(source), "-o", str(target)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HF_HUB_OFFLINE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "chemactor.cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 240
        while not (target.exists() and target.read_bytes().count(b"\n") >= 64) and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    written = output_rows(target)
    assert 64 <= len(written) < 300, "killed mid-run: some rows written, not all"

    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = output_rows(target)
    assert rows[: len(written)] == written
    assert sorted(row["line"] for row in rows) == list(range(1, 301))
    assert [row["description"] for row in sorted(rows, key=lambda row: row["line"])] == texts
    assert all(row["actions"] == "STIR." for row in rows)


def test_extract_on_a_full_disk_keeps_valid_rows_then_a_rerun_finishes(tgi_server, tmp_path: Path) -> None:
    """A file-size limit (RLIMIT_FSIZE) makes the disk 'full' for the child process alone."""
    server = tgi_server(responder=stir)
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    texts = sentences(100)
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    args = ["extract", "--endpoint", server.url, "--api", "generate", "--input", str(source), "-o", str(target)]

    error = one_line_error(run_cli(*args, limit_bytes=4000))
    assert "out.jsonl: cannot write" in error and "rerun" in error
    partial = output_rows(target)
    assert 0 < len(partial) < 100 and target.stat().st_size <= 4000

    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = output_rows(target)
    assert rows[: len(partial)] == partial and [row["line"] for row in rows] == list(range(1, 101))


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str) -> Iterator[None]:
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_tmpfs_stops_the_writer_cleanly_and_the_rerun_completes(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with _tmpfs(disk, "16k"):
        source, target = tmp_path / "in.txt", disk / "out.jsonl"
        texts = [f"{text} {'padding ' * 20}" for text in sentences(200)]
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        with pytest.raises(OutputError, match=r"out\.jsonl: cannot write \(No space left on device\)"):
            convert_file(_convert, source, target, "description", chunk_size=7)
        partial = output_rows(target)
        assert 0 < len(partial) < 200
        subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)
        assert convert_file(_convert, source, target, "description") == 200 - len(partial)
        assert [row["line"] for row in output_rows(target)] == list(range(1, 201))


# --- bad input files and options, through the command line ---------------------------------------------------


@pytest.fixture
def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    random_bytes = tmp_path / "random.bin"
    random_bytes.write_bytes(bytes(range(256)) * 4)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("STIR for 2 h.\nADD water (5 mL) at 25 °C.\n".encode("latin-1"))
    folder = tmp_path / "folder"
    folder.mkdir()
    return {"random": random_bytes, "latin1": latin1, "folder": folder, "missing": tmp_path / "missing.txt"}


def test_check_actions_on_bad_files_prints_one_line(bad_inputs: dict[str, Path]) -> None:
    assert "random.bin:2: not UTF-8 text (byte 0x80)" in one_line_error(
        run_cli("check-actions", str(bad_inputs["random"]))
    )
    assert "latin1.txt:2: not UTF-8 text (byte 0xb0)" in one_line_error(
        run_cli("check-actions", str(bad_inputs["latin1"]))
    )
    assert "folder: cannot read (Is a directory)" in one_line_error(run_cli("check-actions", str(bad_inputs["folder"])))
    assert "missing.txt: cannot read (No such file" in one_line_error(
        run_cli("check-actions", str(bad_inputs["missing"]))
    )


@pytest.mark.slow  # sixteen process starts
@pytest.mark.parametrize("command", ["extract", "describe"])
def test_extract_and_describe_on_bad_files_and_options_print_one_line(
    command: str, bad_inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = str(tmp_path / "out.jsonl")
    endpoint = ["--endpoint", "http://127.0.0.1:9"]
    assert "random.bin:2: not UTF-8 text (byte 0x80)" in one_line_error(
        run_cli(command, *endpoint, "--input", str(bad_inputs["random"]), "-o", out)
    )
    assert "latin1.txt:2: not UTF-8" in one_line_error(
        run_cli(command, *endpoint, "--input", str(bad_inputs["latin1"]), "-o", out)
    )
    assert "folder: cannot read" in one_line_error(
        run_cli(command, *endpoint, "--input", str(bad_inputs["folder"]), "-o", out)
    )
    assert "missing.txt: cannot read" in one_line_error(
        run_cli(command, *endpoint, "--input", str(bad_inputs["missing"]), "-o", out)
    )
    assert "--model /nonexistent: no such model folder" in one_line_error(
        run_cli(command, "--model", "/nonexistent", "CCO>>CC=O")
    )
    assert "a model is a folder" in one_line_error(run_cli(command, "--model", str(bad_inputs["random"]), "x"))
    assert "--api 'foo'" in one_line_error(run_cli(command, *endpoint, "--api", "foo", "CCO>>CC=O"))
    good = tmp_path / "ok.txt"
    good.write_text("CCO>>CC=O\n", encoding="utf-8")
    assert "is a folder; --output is a JSONL file" in one_line_error(
        run_cli(command, *endpoint, "--input", str(good), "-o", str(tmp_path))
    )
    assert not (tmp_path / "out.jsonl").exists(), "nothing written for a bad input"


# --- select and evaluate ----------------------------------------------------------------------------------


def _pool_row(index: int, **values) -> dict:
    row = {
        "id": f"gen-{index}",
        "source": "generated",
        "reaction_smiles": "",
        "description": f"The solution number {index} was stirred.",
        "actions": "STIR.",
        "split": "train",
        "meta": "{}",
    }
    return {**row, **values}


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ([json.dumps(_pool_row(0)), '{"id": "gen-1", "source": '], r"pool\.jsonl:2: not JSON"),
        ([], r"pool\.jsonl: no records to select with"),
        ([json.dumps(_pool_row(0)), "[1, 2]"], r"pool\.jsonl:2: expected a JSON object, got list"),
        ([json.dumps(_pool_row(0, description=7))], r"pool\.jsonl:1: field 'description' must be a string, got int"),
        ([json.dumps(_pool_row(0)), json.dumps(_pool_row(1, description=None))], r"pool\.jsonl:2: .*got NoneType"),
        ([json.dumps(_pool_row(0)), json.dumps(_pool_row(0))], r"pool\.jsonl:2: duplicate id 'gen-0' \(first at"),
    ],
)
def test_select_names_the_bad_pool_line_before_any_scoring(tmp_path: Path, lines: list[str], problem: str) -> None:
    from typer.testing import CliRunner

    from chemactor.cli import app
    from chemactor.errors import InputError

    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["select", "--reference", "examples", "--pool", str(pool), "-o", str(out)])
    assert isinstance(result.exception, InputError), result.output
    assert __import__("re").search(problem, str(result.exception)), str(result.exception)
    assert not (out / "scores.parquet").exists()


def test_select_skip_bad_rows_drops_and_counts_them(tmp_path: Path) -> None:
    pool = tmp_path / "pool.jsonl"
    rows = [_pool_row(index) for index in range(6)]
    lines = [json.dumps(row) for row in rows] + [json.dumps(rows[0]), "not json", json.dumps(_pool_row(9, actions=3))]
    pool.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "select", "--reference", "examples", "--pool", str(pool), "-o", str(out), "--k", "2", "--skip-bad-rows"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pool: 3 rows dropped: duplicate id 1, field 'actions' must be a string, got int 1, not JSON 1" in (
        result.stderr
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["pool"] == 6 and summary["selected"] == 2 and sum(summary["dropped"]["pool"].values()) == 3


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """A folder nobody can write to: a read-only bind mount for root (who ignores permission bits)."""
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot make a read-only folder as root here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_evaluate_and_select_refuse_a_read_only_output_before_any_work(tmp_path: Path) -> None:
    with _read_only(tmp_path / "ro"):
        # the model does not exist either: the output folder is checked first, before anything is loaded
        error = one_line_error(run_cli("evaluate", "--model", "/nonexistent", "-o", str(tmp_path / "ro" / "report")))
        assert "ro/report: output folder is not writable (Read-only file system)" in error or "Permission" in error
        error = one_line_error(
            run_cli("select", "--reference", "examples", "--pool", "/nonexistent.jsonl", "-o", str(tmp_path / "ro"))
        )
        assert "output folder is not writable" in error


def test_data_build_of_generated_rows_refuses_or_counts_repeated_ids(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from chemactor.cli import app

    shards = tmp_path / "gen" / "shards"
    shards.mkdir(parents=True)
    (shards / "part-00000.jsonl").write_text("".join(json.dumps(_pool_row(i)) + "\n" for i in range(3)))
    (shards / "part-00001.jsonl").write_text(json.dumps(_pool_row(1, description="Again.")) + "\n")
    args = ["data", "build", "--source", "generated", "--data-dir", str(tmp_path / "gen"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "part-00001.jsonl:1: duplicate id 'gen-1' (first at" in result.output
    result = CliRunner().invoke(app, [*args, "--skip-bad-rows"])
    assert result.exit_code == 0, result.output
    assert '"dropped": {"duplicate id": 1}' in result.output and '"rows": {"train": 3}' in result.output
