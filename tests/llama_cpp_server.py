"""llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) on a tiny random-weight model, for tests and
benchmarks: a real server that enforces structured output, not one written here.

:func:`write_tiny_gguf` writes a two-layer Llama with a byte-level vocabulary (one token per byte, no merges) and
random weights with the ``gguf`` package; :class:`LlamaCppServer` serves a GGUF file on 127.0.0.1 and stops it.
Random weights make the unconstrained answers noise, which is the point: only the constraint makes them valid.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BOS, EOS = 257, 258
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}\n{% endfor %}"


def _byte_tokens() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes, the spelling llama.cpp's BPE vocabularies use."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = iter(range(256, 512))
    return [chr(byte if byte in printable else next(shifted)) for byte in range(256)]


def write_tiny_gguf(path: str | Path, *, hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """A random-weight Llama with a byte vocabulary (and BOS, EOS) as a GGUF file at ``path``.

    llama.cpp wants at least one BPE merge: the one given joins two control bytes no text here contains.
    """
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab, ffn = 259, 2 * hidden
    tokens = _byte_tokens()

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(32768)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([*tokens, tokens[1] + tokens[2], "<s>", "</s>"])
    writer.add_token_types([gguf.TokenType.NORMAL] * 257 + [gguf.TokenType.CONTROL] * 2)
    writer.add_token_merges([f"{tokens[1]} {tokens[2]}"])
    writer.add_bos_token_id(BOS)
    writer.add_eos_token_id(EOS)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    writer.add_tensor("token_embd.weight", weight(vocab, hidden))
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    writer.add_tensor("output.weight", weight(vocab, hidden))
    for layer in range(layers):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weight(hidden, hidden))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(ffn, hidden))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(ffn, hidden))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(hidden, ffn))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


class LlamaCppServer:
    """``python -m llama_cpp.server`` on ``model`` at 127.0.0.1; ``.url`` is the OpenAI base URL (``.../v1``)."""

    def __init__(self, model: str | Path, n_ctx: int = 32768, startup_timeout: float = 120.0) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        command += ["--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "2", "--verbose", "false"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    error = self.process.stderr.read()[-2000:]
                    raise RuntimeError(f"llama.cpp server did not start: {error}") from None
                time.sleep(0.5)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
