"""Inference: sentence splitting, D2A extraction and R2D writing with a trained tiny model, a TGI endpoint, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from chemactor.chem import canonicalize_reaction
from chemactor.cli import app
from chemactor.data import make_record, to_dataset
from chemactor.errors import ResumeError
from chemactor.inference import ActionExtractor, ProcedureWriter, convert_file, join_actions, split_sentences
from chemactor.training import build_tiny_model, build_trainer, parse_args, train_tokenizer

TINY = str(Path(__file__).resolve().parents[1] / "recipes" / "sft_cpu_tiny.yaml")
REACTION = canonicalize_reaction("CC(=O)O.OCC>>CC(=O)OCC")
PROCEDURE = "Acetic acid was heated in ethanol."


@pytest.fixture(scope="module")
def pairs(shared_data):
    """Six short Paragraph2Actions training sentences with their actions."""
    rows = [json.loads(line) for line in (shared_data / "paragraph2actions" / "pairs.jsonl").open(encoding="utf-8")]
    return [row for row in rows if row["split"] == "train" and len(row["sentence"]) < 80][:6]


@pytest.fixture(scope="module")
def model_dir(pairs, tmp_path_factory):
    """A tiny model trained until it has memorized the six sentences and one reaction (final loss ~0.04)."""
    records = [
        make_record(id=f"p2a-{index}", source="paragraph2actions", description=row["sentence"], actions=row["actions"])
        for index, row in enumerate(pairs)
    ]
    records.append(make_record(id="rxn", source="ord", reaction_smiles=REACTION, description=PROCEDURE))
    output = tmp_path_factory.mktemp("model")
    overrides = {
        "output_dir": output,
        "max_steps": 100,
        "learning_rate": 5e-3,
        "warmup_steps": 5,
        "logging_steps": 100,
        "eval_strategy": "no",
        "save_strategy": "no",
        "tokenizer_vocab_size": 600,
        "disable_tqdm": "true",
    }
    argv = [item for name, value in overrides.items() for item in (f"--{name}", str(value))]
    args, training_args, model_args = parse_args([TINY, "--tasks", "d2a", "r2d", *argv])
    trainer = build_trainer(args, training_args, model_args, datasets.DatasetDict(train=to_dataset(records)))
    trainer.train()
    trainer.save_model(str(output))
    return output


# --- sentences and joining ---------------------------------------------------------------------------------


def test_split_sentences_keeps_abbreviations_and_splits_after_units():
    paragraph = (
        "The mixture was stirred for 2 h. It was diluted with sat. aq. NaHCO3 (ca. 5 mL) and filtered. "
        "Purification (cf. J. Smith) gave the product."
    )
    assert split_sentences(paragraph) == [
        "The mixture was stirred for 2 h.",
        "It was diluted with sat. aq. NaHCO3 (ca. 5 mL) and filtered.",
        "Purification (cf. J. Smith) gave the product.",
    ]
    assert split_sentences("  ") == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["Stir", "2 h.", "ca.", "J.", "A", "(5 mL).", "rt.", "\n", "  ", "x!", "?"]), max_size=20)
)
def test_split_sentences_loses_nothing_but_whitespace(words):
    paragraph = " ".join(words)
    sentences = split_sentences(paragraph)
    assert "".join("".join(sentences).split()) == "".join(paragraph.split())
    assert all(sentence == sentence.strip() and sentence for sentence in sentences)


def test_join_actions_drops_noaction_sentences_unless_alone():
    assert join_actions(["ADD water.", "NOACTION.", "STIR for 2 h."]) == "ADD water; STIR for 2 h."
    assert join_actions(["NOACTION."]) == "NOACTION."
    assert join_actions(["", "  "]) == ""
    assert join_actions(["WAIT for ..", "STIR."]) == "WAIT for .; STIR."  # a value's own dot is kept


# --- a trained model ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_extractor_reproduces_trained_sentences_and_joins_paragraphs(model_dir, pairs):
    extractor = ActionExtractor.from_pretrained(str(model_dir), max_new_tokens=64)
    results = extractor.extract([row["sentence"] for row in pairs], batch_size=4, progress=False)
    assert [result.actions for result in results] == [row["actions"] for row in pairs]
    assert all(result.valid and result.parsed for result in results)

    paragraph = f"{pairs[2]['sentence']} {pairs[3]['sentence']}"
    [joined] = extractor.extract([paragraph], progress=False)
    assert joined.sentences == [pairs[2]["sentence"], pairs[3]["sentence"]]
    assert joined.actions == join_actions([pairs[2]["actions"], pairs[3]["actions"]])
    assert joined.valid and len(joined.parsed) == len(joined.actions.split("; "))


@pytest.mark.slow
def test_procedure_writer_reports_bad_reactions_per_item(model_dir):
    writer = ProcedureWriter.from_pretrained(str(model_dir), max_new_tokens=32)
    written, broken = writer.describe(["OCC.CC(=O)O>>CC(=O)OCC", "C1CC>>CC"], progress=False)
    assert written.valid and written.text == PROCEDURE  # the input is canonicalized as training data was
    assert not broken.valid and "C1CC>>CC" in broken.error and broken.text == ""


@pytest.mark.slow
def test_cli_extract_and_describe_with_a_model(model_dir, pairs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["extract", "--model", str(model_dir), pairs[0]["sentence"]])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["actions"] == pairs[0]["actions"]

    result = runner.invoke(app, ["describe", "--model", str(model_dir), "--max-new-tokens", "32", REACTION])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["text"] == PROCEDURE

    # A file is converted line by line and a rerun converts only the lines not in the output yet.
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("\n".join(row["sentence"] for row in pairs[:3]) + "\n", encoding="utf-8")
    earlier = {"line": 1, "description": pairs[0]["sentence"], "actions": "kept from an earlier run"}
    target.write_text(json.dumps(earlier) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["extract", "--model", str(model_dir), "--input", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == earlier and [row["line"] for row in rows] == [1, 2, 3]
    assert [row["actions"] for row in rows[1:]] == [row["actions"] for row in pairs[1:3]]

    result = runner.invoke(app, ["extract", "--input", str(source), "-o", str(target)])
    assert result.exit_code == 1 and "--model" in str(result.exception)


def test_convert_file_refuses_an_output_that_is_not_this_inputs(tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("one\n", encoding="utf-8")
    target.write_text('{"line": 1, "description": "one"}\n{"line": 2, "description": "two"}\n', encoding="utf-8")
    before = target.read_bytes()
    with pytest.raises(ResumeError, match=r"out\.jsonl:2: not a result for .*in\.txt line 2"):
        convert_file(lambda chunk: [{"description": text} for text in chunk], source, target, "description")
    assert target.read_bytes() == before, "never appended to"


def test_batches_work_with_a_tokenizer_that_has_no_pad_token(pairs):
    tokenizer = train_tokenizer([row["sentence"] for row in pairs], vocab_size=300)
    tokenizer.pad_token = None  # as Llama-family tokenizers ship
    extractor = ActionExtractor.from_model(build_tiny_model(tokenizer), tokenizer, max_new_tokens=3)
    short, long = extractor.extract(["Add water.", "The mixture was stirred for 2 h at 25 °C."], progress=False)
    assert tokenizer.pad_token == tokenizer.eos_token
    assert short.description == "Add water." and long.sentences == ["The mixture was stirred for 2 h at 25 °C."]


# --- an endpoint --------------------------------------------------------------------------------------------


def test_endpoint_extraction_reports_bad_answers_per_item(tgi_server):
    answers = {"Stir it.": "STIR.", "Gibberish.": "FROBNICATE the flask.", "Add water.": "ADD water."}

    def responder(kind, payload):
        sentence = payload["inputs"].split("### Input:\n", 1)[1].split("\n", 1)[0]
        return answers[sentence] + "\n"

    # the third request is refused as too long (422, not retried); the others are answered
    server = tgi_server(responder=responder, script=[None, None, "422"])
    extractor = ActionExtractor.from_endpoint(server.url, api="generate", max_concurrency=1, max_retries=1)
    stirred, gibberish, refused = extractor.extract(["Stir it.", "Gibberish.", "Add water."], progress=False)
    assert stirred.valid and stirred.actions == "STIR." and [action.name for action in stirred.parsed] == ["STIR"]
    assert not gibberish.valid and gibberish.actions == "FROBNICATE the flask."
    assert "FROBNICATE" in gibberish.errors[0]
    assert not refused.valid and "validation" in refused.errors[0]
    assert server.requests["/generate"] + server.requests["/"] == 3


def test_cli_extract_and_describe_through_an_endpoint(tgi_server):
    server = tgi_server(responder=lambda kind, payload: "STIR." if kind == "generate" else "It was stirred.\n")
    runner = CliRunner()
    result = runner.invoke(app, ["extract", "--endpoint", server.url, "--api", "generate", "Stir it."])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["actions"] == "STIR."

    result = runner.invoke(app, ["describe", "--endpoint", server.url, "--served-model", "org/served", "CCO>>CC=O"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["text"] == "It was stirred."
    assert server.payloads[-1]["model"] == "org/served"
    assert "CC=O" in server.payloads[-1]["messages"][-1]["content"]
