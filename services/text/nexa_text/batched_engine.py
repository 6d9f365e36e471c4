"""The batched llama.cpp engine: several sequences decoded together in one context.

On a CPU, decoding one token reads every weight once; decoding one token for each of four
sequences in the same llama_decode call reads them once too, so the aggregate rate grows with the
number of streams instead of being split between them (continuous batching, as llama.cpp's own
server does). One scheduler thread owns the context; `generate` only hands its sequence over and
reads the tokens back, so a new request never touches a context that a running one uses.

Each slot is one llama.cpp sequence id with its own share of the KV cache (n_ctx tokens each) and
its own sampler chain (grammar included). A finished slot keeps its tokens in the cache, and a new
sequence goes to the free slot sharing the longest prefix with it, so a multi-turn chat
re-evaluates only the new turn, as the one-sequence engine does.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from llama_cpp import _internals, llama_cpp
from llama_cpp._logger import set_verbose

from .engine import Sequence, Token
from .llama_engine import LlamaVocab
from .logprobs import log_softmax, top_alternatives

log = logging.getLogger(__name__)

_PENALTY_LAST_N = 64
"""Tokens the repetition penalties look back over (llama-cpp-python's default)."""
_ALIVE_CHECK_S = 0.5
"""How often a waiting `generate` checks that the scheduler thread still runs."""


class _End:
    pass


_END = _End()


@dataclass
class _Job:
    sequence: Sequence
    out: queue.SimpleQueue[Token | _End | BaseException]
    sampler: ctypes.c_void_p | None = None
    pending: list[int] = field(default_factory=list)
    """Tokens to feed to the context next: the prompt's uncached tail, then the last sampled token."""
    produced: int = 0


@dataclass
class _Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)
    """What this sequence id holds in the KV cache, position by position."""
    job: _Job | None = None


class BatchedEngine(LlamaVocab):
    """A GGUF model served to up to `slots` sequences at once from one llama.cpp context."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, n_batch: int, n_gpu_layers: int, slots: int) -> None:
        set_verbose(False)  # llama.cpp logs every graph input at load otherwise
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0x7FFFFFFF if n_gpu_layers == -1 else n_gpu_layers
        self._model = _internals.LlamaModel(path_model=str(path), params=model_params, verbose=False)
        n_ctx = min(n_ctx, self._model.n_ctx_train()) if self._model.n_ctx_train() > 0 else n_ctx
        self._n_batch = min(n_batch, n_ctx)
        ctx_params = llama_cpp.llama_context_default_params()
        # Every slot gets a whole context of its own (kv_unified off), so a sequence can never run
        # out of cache because other sequences are long.
        ctx_params.n_ctx = n_ctx * slots
        ctx_params.n_seq_max = slots
        ctx_params.kv_unified = False
        ctx_params.n_batch = self._n_batch
        ctx_params.n_ubatch = self._n_batch
        ctx_params.n_threads = n_threads
        ctx_params.n_threads_batch = n_threads
        # Flash attention: measured ~1.2 x the aggregate at 4 streams on 2 CPU cores (bench/REPORT.md).
        # Its sums run in another order than the one-sequence engine's (llama-cpp-python leaves it
        # off), so the two engines may pick different tokens where the top two are near tied.
        ctx_params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        try:
            self._ctx = _internals.LlamaContext(model=self._model, params=ctx_params, verbose=False)
        except ValueError:
            self._model.close()
            raise
        self._memory = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._vocab = self._model.vocab
        self._n_vocab = self._model.n_vocab()

        self.n_ctx = n_ctx
        self.slots = slots
        self.chat_template: str | None = self._model.metadata().get("tokenizer.chat_template")
        bos, eos = self._model.token_bos(), self._model.token_eos()
        self.bos_token = self.token_text(bos) if bos >= 0 else ""
        self.eos_token = self.token_text(eos) if eos >= 0 else ""

        self._slots = [_Slot(i) for i in range(slots)]
        self._incoming: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="nexa-text-batch", daemon=True)
        self._thread.start()

    # The parts of the TextEngine protocol that do not touch the context: safe from any thread.

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        tokens: list[int] = self._model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
        return tokens

    def generate(self, sequence: Sequence) -> Iterator[Token]:
        if self._closed:
            raise RuntimeError("the engine is closed")
        job = _Job(sequence, queue.SimpleQueue())
        self._incoming.put(job)
        try:
            while True:
                try:
                    item = job.out.get(timeout=_ALIVE_CHECK_S)
                except queue.Empty:
                    if (problem := self.failure()) is not None:
                        raise RuntimeError(problem) from None  # never wait on a scheduler that is gone
                    continue
                if isinstance(item, _End):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # However the consumer stopped, the scheduler frees the slot at its next step.
            sequence.cancel.set()

    def failure(self) -> str | None:
        """Why the engine cannot generate any more (its scheduler thread died), or None."""
        if not self._closed and not self._thread.is_alive():
            return "the batched scheduler thread died"
        return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._incoming.put(None)
        self._thread.join()
        for slot in self._slots:
            if slot.job is not None:
                self._finish(slot, RuntimeError("the engine was closed"))
        while True:  # jobs that never reached a slot
            try:
                job = self._incoming.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.out.put(RuntimeError("the engine was closed"))
        llama_cpp.llama_batch_free(self._batch)
        self._ctx.close()
        self._model.close()

    # The scheduler thread: the only code that touches the context.

    def _run(self) -> None:
        waiting: list[_Job] = []
        while True:
            busy = any(slot.job is not None for slot in self._slots)
            try:
                # Block only when there is nothing to decode.
                job = self._incoming.get(block=not busy and not waiting)
                if job is None:
                    return
                waiting.append(job)
                while True:
                    more = self._incoming.get_nowait()
                    if more is None:
                        return
                    waiting.append(more)
            except queue.Empty:
                pass
            waiting = self._admit(waiting)
            try:
                self._step()
            except Exception as exc:  # keep serving: fail the sequences in flight, not the service
                log.exception("batched decode step failed")
                for slot in self._slots:
                    if slot.job is not None:
                        self._finish(slot, RuntimeError(f"generation failed: {exc}"))
                        self._forget(slot)

    def _admit(self, waiting: list[_Job]) -> list[_Job]:
        """Give waiting jobs free slots, in arrival order; returns those still waiting."""
        while waiting:
            job = waiting[0]
            if job.sequence.cancel.is_set():
                job.out.put(_END)
                waiting.pop(0)
                continue
            free = [slot for slot in self._slots if slot.job is None]
            if not free:
                break
            waiting.pop(0)
            prompt = job.sequence.prompt_tokens
            slot = max(free, key=lambda s: _common_prefix(s.tokens, prompt))
            # At least one prompt token is evaluated, so there are logits to sample from.
            keep = max(0, min(_common_prefix(slot.tokens, prompt), len(prompt) - 1))
            if job.sequence.sampling.seed is not None:
                keep = 0  # seeded (#22): evaluated whole, so the same request samples the same tokens
            if not llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, keep, -1):
                self._forget(slot)
                keep = 0
            slot.tokens = slot.tokens[:keep]
            try:
                job.sampler = self._sampler(job.sequence)
            except Exception as exc:
                job.out.put(exc)
                continue
            job.pending = list(prompt[keep:])
            slot.job = job
        return waiting

    def _sampler(self, sequence: Sequence) -> ctypes.c_void_p:
        s = sequence.sampling
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if s.repeat_penalty != 1.0 or s.frequency_penalty or s.presence_penalty:
            add(
                chain,
                llama_cpp.llama_sampler_init_penalties(
                    _PENALTY_LAST_N, s.repeat_penalty, s.frequency_penalty, s.presence_penalty
                ),
            )
        if sequence.grammar:
            grammar = llama_cpp.llama_sampler_init_grammar(self._vocab, sequence.grammar.encode("utf-8"), b"root")
            if not grammar:
                llama_cpp.llama_sampler_free(chain)
                raise ValueError("the grammar was rejected by llama.cpp")
            add(chain, grammar)
        if s.temperature <= 0:
            add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            add(chain, llama_cpp.llama_sampler_init_top_k(s.top_k))
            add(chain, llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
            add(chain, llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
            add(chain, llama_cpp.llama_sampler_init_temp(s.temperature))
            seed = s.seed if s.seed is not None else random.randrange(2**31)
            add(chain, llama_cpp.llama_sampler_init_dist(seed))
        return chain  # type: ignore[no-any-return]

    def _step(self) -> None:
        """One llama_decode over every running slot: one token each for those generating, and
        what is left of the budget for the prompts still being evaluated."""
        for slot in self._slots:
            if slot.job is not None and slot.job.sequence.cancel.is_set():
                self._finish(slot, _END)
        running = [slot for slot in self._slots if slot.job is not None]
        if not running:
            return
        # Generating slots first: a long prompt must not stall the streams already running.
        running.sort(key=lambda slot: len(slot.job.pending) if slot.job else 0)
        batch, budget, n = self._batch, self._n_batch, 0
        fed: list[tuple[_Slot, int, int | None]] = []  # slot, tokens fed, batch index of its logits
        for slot in running:
            job = slot.job
            assert job is not None
            take = min(len(job.pending), budget - n)
            if take <= 0:
                break
            start = len(slot.tokens)
            for i in range(take):
                batch.token[n] = job.pending[i]
                batch.pos[n] = start + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq_id
                batch.logits[n] = False
                n += 1
            last = take == len(job.pending)
            if last:
                batch.logits[n - 1] = True
            fed.append((slot, take, n - 1 if last else None))
        batch.n_tokens = n
        code = llama_cpp.llama_decode(self._ctx.ctx, batch)
        if code != 0:
            for slot, _, _ in fed:
                self._finish(slot, RuntimeError(f"llama_decode failed (code {code})"))
                self._forget(slot)
            return
        for slot, take, index in fed:
            job = slot.job
            assert job is not None
            slot.tokens.extend(job.pending[:take])
            del job.pending[:take]
            if index is None:
                continue
            logprob, top = self._logprobs(index, job.sequence.top_logprobs)
            # min_tokens / ignore_eos (conformance, #22): the sampler reads the logits from the context,
            # so making end-of-generation tokens -inf there keeps them from being sampled.
            if not job.sequence.may_end(job.produced):
                pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, index)
                self.suppress_eog(np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)))
            token_id = llama_cpp.llama_sampler_sample(job.sampler, self._ctx.ctx, index)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token_id):
                self._finish(slot, _END)
                continue
            if logprob is not None:
                logprob, top = self._chosen_logprob(index, token_id, top)
            job.out.put(Token(token_id, self._piece(token_id, False), logprob, top))
            job.produced += 1
            if job.produced >= job.sequence.max_tokens:
                self._finish(slot, _END)
            else:
                job.pending = [token_id]

    def _finish(self, slot: _Slot, last: _End | BaseException) -> None:
        job = slot.job
        if job is None:
            return
        if job.sampler:
            llama_cpp.llama_sampler_free(job.sampler)
            job.sampler = None
        job.out.put(last)
        slot.job = None

    def _forget(self, slot: _Slot) -> None:
        llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
        slot.tokens = []

    def _log_softmax(self, index: int) -> np.ndarray:
        pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, index)
        return log_softmax(np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)))

    def _logprobs(self, index: int, top_n: int | None) -> tuple[float | None, dict[int, float] | None]:
        """The alternatives, taken before sampling (the token itself is known only after)."""
        if top_n is None:
            return None, None
        return 0.0, top_alternatives(self._log_softmax(index), top_n)

    def _chosen_logprob(
        self, index: int, token_id: int, top: dict[int, float] | None
    ) -> tuple[float, dict[int, float] | None]:
        if top is not None and token_id in top:
            return top[token_id], top
        return float(self._log_softmax(index)[token_id]), top


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
