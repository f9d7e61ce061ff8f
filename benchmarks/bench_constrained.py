"""Constrained D2A: validity and latency per answer with and without the action constraint, and its cost per token.

Three measurements on CPU, with models that know nothing (random weights), so that validity comes from the
constraint alone:

1. structured-generation engines on the action grammar: compile time of the readable-format grammar (GBNF)
   and of the JSON schema, and the cost of one token's mask (fill + apply + advance) on a random walk through
   the grammar, for every engine installed (xgrammar, the one ChemActor uses; llguidance and outlines-core
   when present);
2. a tiny local transformers model (ChemActor's tiny Llama, byte-level BPE) through ``ActionExtractor``,
   constrained with xgrammar's logits processor or not;
3. llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) on a random-weight GGUF model, with the
   constraint as a JSON schema (``json_object``), as a GBNF grammar, or without.

Validity is the share of answers that parse and pass ``validate_actions`` (one answer per description, no
sentence splitting). The machine's load is printed with the results: timings are only comparable within one run.

    python -m benchmarks.bench_constrained [--descriptions 100] [--data-dir ../shared/data] [--skip-server]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._results import machine_line, write_section
from chemactor.actions import ActionConstraint
from chemactor.inference import ActionExtractor, EndpointCompleter, ModelCompleter

ROOT = Path(__file__).resolve().parents[1]


def descriptions(count: int, data_dir: str | None) -> tuple[list[str], str]:
    """``count`` procedure sentences from the reference Paragraph2Actions data, else the shipped examples."""
    from chemactor.builders.records import load_seeds

    source = "paragraph2actions" if data_dir else "examples"
    splits = load_seeds(source, data_dir)
    texts = [row["description"] for name in ("test", "validation", "train") if name in splits for row in splits[name]]
    texts = [text for text in texts if text]
    random.Random(0).shuffle(texts)
    return texts[:count], f"{min(count, len(texts))} descriptions from {source}"


def tiny_model() -> tuple[Any, Any]:
    from chemactor.examples import example_records
    from chemactor.training import build_tiny_model, train_tokenizer

    texts = [row["description"] for row in example_records()] + [row["actions"] for row in example_records()]
    tokenizer = train_tokenizer(texts, vocab_size=400)
    return build_tiny_model(tokenizer, num_hidden_layers=1), tokenizer


# --- 1. engines ----------------------------------------------------------------------------------------------


def _walk(start, allowed, advance, steps: int = 200, walks: int = 5) -> float:
    """Milliseconds per token of mask + advance on random walks through a grammar."""
    rng, spent, tokens = random.Random(0), 0.0, 0
    for _ in range(walks):
        state = start()
        for _ in range(steps):
            began = time.perf_counter()
            options = allowed(state)
            spent += time.perf_counter() - began
            if not options:
                break
            token = rng.choice(options)
            began = time.perf_counter()
            done = advance(state, token)
            spent += time.perf_counter() - began
            tokens += 1
            if done:
                break
    return 1000 * spent / max(tokens, 1)


def _masked(size: int, eos: int, fill) -> list[int]:
    """The tokens a filled bitmask allows, end of sequence left out (the walk goes on while it can)."""
    import torch

    logits = torch.zeros(1, size)
    fill(logits)
    return [i for i in torch.nonzero(logits[0] > -1e30).flatten().tolist() if i != eos]


def xgrammar_rows(tokenizer: Any, constraint: ActionConstraint) -> list[tuple[str, str, float, float]]:
    import xgrammar

    size, eos = len(tokenizer), tokenizer.eos_token_id
    compiler = xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=size))
    rows = []
    for form, compile_ in (
        ("readable GBNF", lambda: compiler.compile_grammar(constraint.gbnf())),
        (
            "JSON schema",
            lambda: compiler.compile_json_schema(json.dumps(constraint.json_schema()), any_whitespace=False),
        ),
    ):
        began = time.perf_counter()
        grammar = compile_()
        seconds = time.perf_counter() - began
        bitmask = xgrammar.allocate_token_bitmask(1, size)

        def fill(logits, box, bitmask=bitmask):
            box[0].fill_next_token_bitmask(bitmask)
            xgrammar.apply_token_bitmask_inplace(logits, bitmask)

        milliseconds = _walk(
            lambda grammar=grammar: [xgrammar.GrammarMatcher(grammar)],
            lambda box, fill=fill: _masked(size, eos, lambda logits: fill(logits, box)),
            lambda box, token: not box[0].accept_token(token) or box[0].is_terminated(),
        )
        rows.append(("xgrammar", form, seconds, milliseconds))
    return rows


def llguidance_rows(tokenizer: Any, constraint: ActionConstraint) -> list[tuple[str, str, float, float]]:
    import llguidance
    import llguidance.hf
    import llguidance.torch as lltorch

    size, eos = len(tokenizer), tokenizer.eos_token_id
    lltokenizer = llguidance.hf.from_tokenizer(tokenizer, size)
    compact = {"whitespace_flexible": False}
    rows = []
    for form, grammar in (
        ("readable GBNF", llguidance.grammar_from("gbnf", constraint.gbnf())),
        ("JSON schema", llguidance.LLMatcher.grammar_from_json_schema(constraint.json_schema(), defaults=compact)),
    ):
        began = time.perf_counter()
        llguidance.LLMatcher(lltokenizer, grammar)
        seconds = time.perf_counter() - began
        bitmask = lltorch.allocate_token_bitmask(1, size)

        def fill(logits, box, bitmask=bitmask):
            lltorch.fill_next_token_bitmask(box[0], bitmask, 0)
            lltorch.apply_token_bitmask_inplace(logits, bitmask)

        def advance(box, token):
            box[0].consume_token(token)
            return box[0].is_stopped() or box[0].is_error()

        milliseconds = _walk(
            lambda grammar=grammar: [llguidance.LLMatcher(lltokenizer, grammar)],
            lambda box, fill=fill: _masked(size, eos, lambda logits: fill(logits, box)),
            advance,
        )
        rows.append(("llguidance", form, seconds, milliseconds))
    return rows


def outlines_rows(tokenizer: Any, constraint: ActionConstraint) -> list[tuple[str, str, float, float]]:
    from outlines_core import Index, Vocabulary

    eos = tokenizer.eos_token_id
    vocabulary: dict[str, list[int]] = {}
    for token, index in tokenizer.get_vocab().items():
        if token not in tokenizer.all_special_tokens:
            vocabulary.setdefault(tokenizer.convert_tokens_to_string([token]), []).append(index)
    began = time.perf_counter()
    index = Index(constraint.regex(), Vocabulary(eos, vocabulary))
    seconds = time.perf_counter() - began

    def advance(box, token):
        box[0] = index.get_next_state(box[0], token)
        return box[0] is None

    milliseconds = _walk(
        lambda: [index.get_initial_state()],
        lambda box: [token for token in index.get_allowed_tokens(box[0]) or [] if token != eos],
        advance,
    )
    return [("outlines-core", "readable regex", seconds, milliseconds)]


ENGINES = {"xgrammar": xgrammar_rows, "llguidance": llguidance_rows, "outlines-core": outlines_rows}


def _run_engine(measure, tokenizer, constraint, queue) -> None:
    try:
        queue.put(measure(tokenizer, constraint))
    except ImportError:
        queue.put([])


def bench_engines(tokenizer: Any, constraint: ActionConstraint, timeout: float) -> list[tuple[str, str, Any, Any]]:
    """(engine, grammar, compile seconds, milliseconds per token) for each installed engine and grammar form;
    an engine still compiling or walking after ``timeout`` seconds is reported as such."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    rows = []
    for name, measure in ENGINES.items():
        queue = context.Queue()
        process = context.Process(target=_run_engine, args=(measure, tokenizer, constraint, queue))
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            rows.append((name, "readable grammar", f"> {timeout:.0f} (stopped)", "n/a"))
        else:
            rows += queue.get()
    return rows


# --- 2 and 3. validity and latency ---------------------------------------------------------------------------


def bench_extractor(extractor: ActionExtractor, texts: list[str]) -> tuple[float, float]:
    """(validity, seconds per answer) of one answer per text."""
    began = time.perf_counter()
    extractions = extractor.extract(texts, batch_size=8, split=False, progress=False)
    seconds = time.perf_counter() - began
    return sum(extraction.valid for extraction in extractions) / len(extractions), seconds / len(texts)


def _valid(text: str) -> bool:
    from chemactor.actions import ActionParseError, parse_actions, validate_actions

    try:
        return bool(text.strip()) and not validate_actions(parse_actions(text))
    except ActionParseError:
        return False


def local_rows(texts: list[str], model: Any, tokenizer: Any) -> list[tuple[Any, ...]]:
    """The tiny model answering each text (batches of 8, greedy) through generate_local, the local generation path."""
    from chemactor.data import prompt_for
    from chemactor.generation.backends import generate_local
    from chemactor.inference import first_line

    completer = ModelCompleter(model, tokenizer)
    prompts = [completer.render(prompt_for("d2a", text)) for text in texts]
    constraint = ActionConstraint().fit(700)  # the longest answer fits the tiny model's 1024 positions
    rows = []
    for label, used in (("constrained (xgrammar)", constraint), ("unconstrained", None)):
        began, answers = time.perf_counter(), []
        for start in range(0, len(prompts), 8):
            answers += generate_local(model, tokenizer, prompts[start : start + 8], max_new_tokens=64, constraint=used)
        seconds = time.perf_counter() - began
        valid = sum(_valid(first_line(text)) for text, _ in answers)
        tokens = sum(usage["completion_tokens"] for _, usage in answers)
        rows.append(("local tiny Llama", label, valid / len(texts), seconds / len(texts), tokens / len(texts)))
    return rows


def server_rows(texts: list[str], workdir: Path) -> list[tuple[str, ...]]:
    from huggingface_hub import constants

    sys.path.insert(0, str(ROOT / "tests"))
    from llama_cpp_server import LlamaCppServer, write_tiny_gguf

    from chemactor.generation import EndpointBackend

    os.environ.pop("HF_HUB_OFFLINE", None)  # the client must reach 127.0.0.1
    constants.HF_HUB_OFFLINE = False
    server = LlamaCppServer(write_tiny_gguf(workdir / "tiny.gguf"))
    rows = []
    try:
        for label, structured_output, constrained in (
            ("constrained (JSON schema, json_object)", "json_object", True),
            ("constrained (GBNF grammar)", "gbnf", True),
            ("unconstrained", None, False),
        ):
            backend = EndpointBackend(server.url, structured_output=structured_output, timeout=600, max_concurrency=1)
            extractor = ActionExtractor(EndpointCompleter(backend, max_new_tokens=256), constrained=constrained)
            valid, seconds = bench_extractor(extractor, texts)
            tokens = backend.stats["completion_tokens"] / len(texts)
            rows.append(("llama.cpp server, random GGUF", label, valid, seconds, tokens))
    finally:
        server.close()
    return rows


def _cell(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--descriptions", type=int, default=100)
    parser.add_argument("--data-dir", default=os.environ.get("CHEMACTOR_DATA_DIR"))
    parser.add_argument("--skip-server", action="store_true", help="Leave out the llama.cpp server.")
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_constrained"))
    parser.add_argument("--engine-timeout", type=float, default=180, help="Seconds an engine may take in part 1.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_line()
    texts, source = descriptions(args.descriptions, args.data_dir)
    model, tokenizer = tiny_model()

    engines = bench_engines(tokenizer, ActionConstraint(), args.engine_timeout)
    answers = local_rows(texts, model, tokenizer)
    if not args.skip_server:
        answers += server_rows(texts, args.workdir)
    load = os.getloadavg()[0]

    engine_table = ["| engine | grammar | compile (s) | mask + advance per token (ms) |", "|---|---|---|---|"]
    engine_table += [f"| {e} | {g} | {_cell(s, 3)} | {_cell(ms, 2)} |" for e, g, s, ms in engines]
    answer_table = ["| model | decoding | validity | seconds per answer | tokens per answer |", "|---|---|---|---|---|"]
    answer_table += [f"| {m} | {d} | {v:.2f} | {s:.3f} | {t:.0f} |" for m, d, v, s, t in answers]
    local = {row[1]: row for row in answers if row[0] == "local tiny Llama"}
    constrained, free = local["constrained (xgrammar)"], local["unconstrained"]
    overhead = 1000 * (constrained[3] / max(constrained[4], 1) - free[3] / max(free[4], 1))
    markdown = "\n".join(
        [
            "## Constrained decoding (`python -m benchmarks.bench_constrained`)",
            "",
            f"Machine: {machine}; load average {load:.1f} at the end (other jobs share the cores: timings are",
            "comparable within this table only).",
            "",
            "Engines on the action grammar (ChemActor's tiny byte-level BPE tokenizer, 400 tokens; random walks):",
            "",
            *engine_table,
            "",
            f"D2A on {source}, one answer each, random-weight models (validity = parses and validates):",
            "",
            *answer_table,
            "",
            f"Local model, xgrammar's cost per generated token (constrained minus unconstrained seconds per token): "
            f"{overhead:.2f} ms.",
        ]
    )
    print(markdown)
    write_section("bench_constrained", markdown)


if __name__ == "__main__":
    main()
