"""The llama.cpp engine: one sequence at a time in one context, reusing the KV cache of the
previous prompt's common prefix (multi-turn chats re-evaluate only the new turn)."""

from __future__ import annotations

import ctypes
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from llama_cpp import Llama, LlamaGrammar, LogitsProcessorList, llama_cpp

from .engine import Sequence, Token
from .logprobs import token_logprobs


class LlamaVocab:
    """What both llama.cpp engines answer from the model's vocabulary alone (no context needed)."""

    _vocab: llama_cpp.llama_vocab_p
    _eog_ids: np.ndarray | None = None

    def eog_ids(self) -> np.ndarray:
        """Every end-of-generation token of the vocabulary (EOS, EOT, <|im_end|>, ...), found once."""
        if self._eog_ids is None:
            n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
            is_eog = llama_cpp.llama_vocab_is_eog
            self._eog_ids = np.fromiter((i for i in range(n_vocab) if is_eog(self._vocab, i)), dtype=np.intc)
        return self._eog_ids

    def suppress_eog(self, logits: np.ndarray) -> None:
        """Make end-of-generation tokens impossible to sample (`min_tokens`, `ignore_eos`)."""
        logits[self.eog_ids()] = -np.inf

    def _piece(self, token_id: int, special: bool) -> bytes:
        buffer = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(self._vocab, token_id, buffer, 256, 0, special)
        return buffer.raw[: max(n, 0)]

    def token_text(self, token_id: int) -> str:
        return self._piece(token_id, True).decode("utf-8", errors="replace")

    def grammar_error(self, gbnf: str) -> str | None:
        # llama.cpp reports a bad grammar by returning NULL (details go to its log): compiling it
        # here, before generation starts, turns that into a 400 instead of a failure mid-stream.
        sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            return "the grammar derived from the schema was rejected by llama.cpp"
        llama_cpp.llama_sampler_free(sampler)
        return None

    def unsupported(self, sequence: Sequence) -> str | None:
        return None  # llama.cpp does every feature the routes ask for


class LlamaEngine(LlamaVocab):
    """A GGUF model in llama-cpp-python. Not thread-safe: the scheduler runs `generate` on one thread."""

    slots = 1

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, n_batch: int, n_gpu_layers: int) -> None:
        self._llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=min(n_batch, n_ctx),
            n_gpu_layers=n_gpu_layers,
            verbose=False,
        )
        self.n_ctx = self._llm.n_ctx()
        self._vocab = self._llm._model.vocab
        metadata = self._llm.metadata
        self.chat_template: str | None = metadata.get("tokenizer.chat_template")
        self.bos_token = self.token_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        self.eos_token = self.token_text(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def generate(self, sequence: Sequence) -> Iterator[Token]:
        llm, s = self._llm, sequence.sampling
        llm.set_seed(s.seed if s.seed is not None else random.randrange(2**31))
        if s.seed is not None:
            # Same seed, same output: the prompt is evaluated whole. Reusing a cached prefix splits
            # the evaluation differently, which changes the logits' last bits, and so samples.
            llm.reset()
        grammar = LlamaGrammar.from_string(sequence.grammar, verbose=False) if sequence.grammar else None
        produced = 0

        def hold_eog(_: object, logits: np.ndarray) -> np.ndarray:
            if not sequence.may_end(produced):
                self.suppress_eog(logits)
            return logits

        holds_eog = sequence.ignore_eos or sequence.min_tokens > 0
        tokens = llm.generate(
            sequence.prompt_tokens,
            temp=s.temperature,
            top_k=s.top_k,
            top_p=s.top_p,
            min_p=s.min_p,
            typical_p=1.0,
            repeat_penalty=s.repeat_penalty,
            presence_penalty=s.presence_penalty,
            frequency_penalty=s.frequency_penalty,
            grammar=grammar,
            logits_processor=LogitsProcessorList([hold_eog]) if holds_eog else None,
        )
        try:
            for token_id in tokens:
                if sequence.cancel.is_set() or llama_cpp.llama_vocab_is_eog(self._vocab, token_id):
                    return
                logprob, top = self._logprobs(token_id, sequence.top_logprobs)
                yield Token(token_id, self._piece(token_id, False), logprob, top)
                produced += 1
                if produced >= sequence.max_tokens or sequence.cancel.is_set():
                    return
        finally:
            tokens.close()

    def _logprobs(self, token_id: int, top_n: int | None) -> tuple[float | None, dict[int, float] | None]:
        if top_n is None:
            return None, None
        # The logits that produced this token are still in the context until the next decode.
        pointer = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return token_logprobs(np.ctypeslib.as_array(pointer, shape=(self._llm.n_vocab(),)), token_id, top_n)

    def close(self) -> None:
        self._llm.close()
