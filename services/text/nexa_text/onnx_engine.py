"""The ONNX Runtime engine: an onnxruntime-genai model folder (genai_config.json, model.onnx,
tokenizer.json) behind the same protocol as the llama.cpp engine, one sequence at a time.

Generation runs on onnxruntime-genai's generator, a token at a time so a stream sees each token
as it comes and a cancelled request stops at the next one. Prompts are tokenized with the
folder's tokenizer.json through `tokenizers`, which (unlike onnxruntime-genai's tokenizer) can
keep text such as `<|im_start|>` in a user's message from becoming a control token.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime_genai as og
from tokenizers import Tokenizer

from nexa_common.catalogue import ModelError

from .engine import Sequence, Token
from .logprobs import token_logprobs


class OnnxEngine:
    """An onnxruntime-genai model. Not thread-safe for generation: the runtime runs one sequence at a time.
    It has no grammar support (see engine.GrammarSupport): tools and JSON modes are refused before it runs."""

    slots = 1

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int) -> None:
        folder = _model_folder(path)
        try:
            genai = json.loads((folder / "genai_config.json").read_text())
            tokenizer_config = _read_json(folder / "tokenizer_config.json")
            config = og.Config(str(folder))
            # The builder leaves thread counts to onnxruntime (all cores, hyper-threads included);
            # decoding is faster on the physical cores, as for llama.cpp.
            options = {"intra_op_num_threads": n_threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
            self._model = og.Model(config)
            self._og_tokenizer = og.Tokenizer(self._model)
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self._literal = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            # onnxruntime's messages carry full paths, and /ready's reason reaches clients.
            raise ModelError(
                f"onnxruntime-genai could not load '{folder.name}': not a valid ONNX Runtime GenAI model folder"
            ) from exc
        # Special tokens written in user content are encoded as the plain text they are.
        self._literal.encode_special_tokens = True
        model = genai.get("model", {})
        self.n_ctx = min(n_ctx, int(model.get("context_length") or n_ctx))
        self._vocab_size = int(model.get("vocab_size") or self._tokenizer.get_vocab_size())
        self._eos = set(_ids(model.get("eos_token_id"))) | set(self._og_tokenizer.eos_token_ids)
        self.chat_template = _chat_template(folder, tokenizer_config)
        self.bos_token = _special_text(tokenizer_config.get("bos_token")) or self._id_text(model.get("bos_token_id"))
        self.eos_token = _special_text(tokenizer_config.get("eos_token")) or self._id_text(
            next(iter(_ids(model.get("eos_token_id"))), None)
        )

    def _id_text(self, token_id: object) -> str:
        return self._tokenizer.id_to_token(token_id) or "" if isinstance(token_id, int) else ""

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        tokenizer = self._tokenizer if special else self._literal
        return list(tokenizer.encode(text, add_special_tokens=add_bos).ids)

    def token_text(self, token_id: int) -> str:
        return self._tokenizer.decode([token_id], skip_special_tokens=False)

    def unsupported(self, sequence: Sequence) -> str | None:
        s = sequence.sampling
        if s.min_p > 0 or s.presence_penalty != 0 or s.frequency_penalty != 0:
            return (
                "The ONNX backend does not support min_p, presence_penalty or frequency_penalty; leave them at "
                "their defaults (use repeat_penalty), or serve a GGUF model."
            )
        return None

    def generate(self, sequence: Sequence) -> Iterator[Token]:
        s = sequence.sampling
        params = og.GeneratorParams(self._model)
        sample = s.temperature > 0
        options: dict[str, Any] = {
            "max_length": len(sequence.prompt_tokens) + sequence.max_tokens,
            "do_sample": sample,
            "repetition_penalty": s.repeat_penalty,
            "random_seed": s.seed if s.seed is not None else random.randrange(2**31),
        }
        # onnxruntime-genai keeps its end-of-text tokens from being chosen before `min_length`
        # (prompt included): that is min_tokens, and ignore_eos when it spans the whole budget.
        held = sequence.max_tokens if sequence.ignore_eos else sequence.min_tokens
        if held > 0:
            options["min_length"] = len(sequence.prompt_tokens) + held
        if sample:
            # top_k=0 means no top-k filter; onnxruntime-genai spells that as the vocabulary size
            # (and refuses anything larger).
            top_k = min(s.top_k or self._vocab_size, self._vocab_size)
            options.update(temperature=s.temperature, top_p=s.top_p, top_k=top_k)
        params.set_search_options(**options)
        generator = og.Generator(self._model, params)
        try:
            if sequence.cancel.is_set():
                return
            generator.append_tokens(np.asarray(sequence.prompt_tokens, dtype=np.int32))
            stream = self._og_tokenizer.create_stream()
            produced = 0
            while not generator.is_done() and not sequence.cancel.is_set():
                # The generator computes the next position's logits as it appends a token: the
                # logits that choose a token are the ones there before `generate_next_token`.
                logits = self._logits(generator) if sequence.top_logprobs is not None else None
                generator.generate_next_token()
                token_id = int(generator.get_next_tokens()[0])
                if token_id in self._eos:
                    return
                logprob, top = token_logprobs(logits, token_id, sequence.top_logprobs)
                yield Token(token_id, stream.decode(token_id).encode("utf-8"), logprob, top)
                produced += 1
                if produced >= sequence.max_tokens:
                    return
        finally:
            del generator  # frees the KV cache now, not whenever the collector runs

    def _logits(self, generator: og.Generator) -> np.ndarray:
        return np.asarray(generator.get_logits(), dtype=np.float64).reshape(-1)[: self._vocab_size]

    def close(self) -> None:
        del self._model


def _model_folder(path: Path) -> Path:
    """The folder holding genai_config.json (a path to a file in it, such as model.onnx, also works)."""
    folder = path if path.is_dir() else path.parent
    if not (folder / "genai_config.json").is_file():
        raise ModelError(
            f"'{path.name}' is not an ONNX Runtime GenAI model folder (no genai_config.json); build one with "
            f"onnxruntime-genai's model builder or `nexa pull smollm2-onnx`."
        )
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _chat_template(folder: Path, tokenizer_config: dict[str, Any]) -> str | None:
    # transformers writes the template into chat_template.jinja since 4.50, into
    # tokenizer_config.json before; the builder copies whichever the source folder has.
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    template = tokenizer_config.get("chat_template")
    return template if isinstance(template, str) else None


def _special_text(value: object) -> str:
    if isinstance(value, dict):  # {"content": "<|im_end|>", "lstrip": false, ...}
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _ids(value: object) -> list[int]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int)]
    return []
