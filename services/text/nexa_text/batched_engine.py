"""The batched llama.cpp engine (the default for GGUF models): several sequences decoded together
in one context.

On a CPU, decoding one token reads every weight once; decoding one token for each of four
sequences in the same llama_decode call reads them once too, so the aggregate rate grows with the
number of streams instead of being split between them (continuous batching, as llama.cpp's own
server does). One scheduler thread owns the context; `submit` only hands a sequence over, and the
scheduler hands its tokens back once per step, so a new request never touches a context that a
running one uses.

Memory: the slots share one KV cache (llama.cpp's unified cache) of `kv_tokens` cells, so memory
does not grow with the number of slots. A sequence may use up to `n_ctx` of it; when the cells run
out, the scheduler first drops the prefixes that finished sequences left behind (least recently
used first), then puts the most recently admitted sequence back at the head of the queue: its
cells are freed, its tokens so far become its prompt, and it resumes once another sequence ends.

Prefix reuse: each slot's tokens stay in the cache after its sequence ends. A new sequence reuses
the longest prefix any slot holds, its own or another's (llama_memory_seq_cp shares the cells of a
unified cache, copying nothing), so a shared system prompt or the earlier turns of a chat are not
evaluated again; the count is reported as `Sequence.cached_tokens`.

Bursts: when the engine is idle and a sequence arrives while more requests are on their way
(`coming`: inside the service's route, not submitted yet), it waits for them (at most
`gather_max_s`), so that a burst's prompts are evaluated in one step, not the first alone while
the rest are still parsed, each of them then waiting for the step in progress (whose threads take
the cores the parsing needs). A lone request, with nothing on its way, never waits.

Threads: every step is timed, and a ThreadGovernor lowers the thread count while other processes
keep the threads from their cores (see threads.py).
"""

from __future__ import annotations

import ctypes
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from llama_cpp import _internals, llama_cpp
from llama_cpp._logger import set_verbose

from nexa_common.cpu import IdleCores

from .engine import Delivery, Sequence, Token
from .llama_engine import LlamaVocab
from .logprobs import log_softmax, top_alternatives
from .threads import ThreadGovernor

log = logging.getLogger(__name__)

_PENALTY_LAST_N = 64
"""Tokens the repetition penalties look back over (llama-cpp-python's default)."""
_GGML_TYPE_F16 = 1
_GGML_TYPE_BF16 = 30
_NO_KV_SLOT = 1
"""llama_decode's answer when the KV cache has no room for the batch (nothing was evaluated)."""
ALIVE_CHECK_S = 0.5
"""How often a consumer waiting for tokens checks that the scheduler thread still runs."""
GATHER_MAX_S = 0.025
"""Longest an idle engine waits for the requests on their way, once it has a sequence to start."""
_GATHER_POLL_S = 0.001
"""How often it looks at their count meanwhile (one may fail instead, and never arrive)."""


@dataclass
class _Job:
    sequence: Sequence
    deliver: Delivery
    order: int
    """Admission order: the most recent is the one put back when the cache runs out."""
    sampler: ctypes.c_void_p | None = None
    tokens: list[int] = field(default_factory=list)
    """The prompt and every token sampled so far: what the job's slot must hold to go on."""
    pending: list[int] = field(default_factory=list)
    """Tokens to feed to the context next: the prompt's uncached tail, then the last sampled token."""
    produced: int = 0
    placed: bool = False
    """Its cached prefix was counted (a job put back and resumed reports its first placement)."""


@dataclass
class _Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)
    """What this sequence id holds in the KV cache, position by position."""
    job: _Job | None = None
    used_at: float = 0.0
    """When a job last left it (least recently used prefixes are dropped first)."""


class BatchedEngine(LlamaVocab):
    """A GGUF model served to up to `slots` sequences at once from one llama.cpp context."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int,
        n_threads: int,
        n_batch: int,
        n_gpu_layers: int,
        slots: int,
        kv_tokens: int | None = None,
        prefix_reuse: bool = True,
        adapt_threads: bool = True,
        coming: Callable[[], int] = lambda: 0,
        gather_max_s: float = GATHER_MAX_S,
    ) -> None:
        set_verbose(False)  # llama.cpp logs every graph input at load otherwise
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0x7FFFFFFF if n_gpu_layers == -1 else n_gpu_layers
        self._model = _internals.LlamaModel(path_model=str(path), params=model_params, verbose=False)
        n_ctx = min(n_ctx, self._model.n_ctx_train()) if self._model.n_ctx_train() > 0 else n_ctx
        kv_tokens = max(n_ctx, kv_tokens or n_ctx)
        self._n_batch = min(n_batch, n_ctx)
        ctx_params = llama_cpp.llama_context_default_params()
        # One cache for all slots: its size is the memory budget, whatever the number of slots.
        ctx_params.n_ctx = kv_tokens
        ctx_params.n_seq_max = slots
        ctx_params.kv_unified = True
        ctx_params.n_batch = self._n_batch
        ctx_params.n_ubatch = self._n_batch
        ctx_params.n_threads = n_threads
        ctx_params.n_threads_batch = n_threads
        # Flash attention: with a unified cache every sequence's attention spans all the cells in
        # use, and llama.cpp's CPU flash-attention kernel skips the cells the mask hides, where the
        # plain path multiplies through them.
        ctx_params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        # Batch invariance: that kernel has two faster variants, taken by the shape of the batch (a
        # tiled one for 64 rows or more, a KV-split one for a single row over 512 cells or more),
        # whose sums differ from the plain one's in the first decimals of the logits. A sequence's
        # answer would then depend on what else shares its steps and on what the cache holds, so
        # that greedy decoding, prefix reuse and a seed would not repeat. Both variants need K and V
        # of one type: V in bfloat16 (as small as float16, summed in float32) keeps every batch on
        # the plain kernel. (What is left: it sums a sequence's cells in the order the shared cache
        # stores them; see services/text/README.md, Reproducibility.)
        # (A CPU concern: offloaded layers keep llama.cpp's default types, which every GPU kernel takes.)
        if n_gpu_layers == 0:
            ctx_params.type_k = _GGML_TYPE_F16
            ctx_params.type_v = _GGML_TYPE_BF16
        try:
            self._ctx = _internals.LlamaContext(model=self._model, params=ctx_params, verbose=False)
        except ValueError:
            self._model.close()
            raise
        self._memory = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._vocab = self._model.vocab
        self._n_vocab = self._model.n_vocab()
        self._prefix_reuse = prefix_reuse
        self._coming = coming
        self._gather_max_s = gather_max_s
        self.steps = 0
        """llama_decode calls made (a metric: with the tokens generated, how full the batches are)."""

        self.n_ctx = n_ctx
        self.kv_tokens = kv_tokens
        self.slots = slots
        self.chat_template: str | None = self._model.metadata().get("tokenizer.chat_template")
        bos, eos = self._model.token_bos(), self._model.token_eos()
        self.bos_token = self.token_text(bos) if bos >= 0 else ""
        self.eos_token = self.token_text(eos) if eos >= 0 else ""

        self.governor = ThreadGovernor(n_threads, adaptive=adapt_threads, idle_cores=IdleCores())
        self._threads = n_threads
        self._slots = [_Slot(i) for i in range(slots)]
        self._incoming: queue.Queue[_Job | None] = queue.Queue()
        self._outbox: dict[int, tuple[_Job, list[Token | BaseException | None]]] = {}
        self._admitted = 0
        self._hold = False
        """Set when a sequence was put back for want of cache: no admissions until one ends."""
        self._closed = False
        self._gate = threading.Lock()
        self._stopped: str | None = None
        """Why the scheduler takes no more sequences (closed, or its thread ended); under `_gate`."""
        self._thread = threading.Thread(target=self._run, name="nexa-text-batch", daemon=True)
        self._thread.start()

    # The parts of the TextEngine protocol that do not touch the context: safe from any thread.

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        tokens: list[int] = self._model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
        return tokens

    def submit(self, sequence: Sequence, deliver: Delivery) -> None:
        """Queue a sequence; `deliver` is called on the scheduler thread with each step's tokens,
        and last with None (the end) or an exception. Set `sequence.cancel` to stop it early."""
        with self._gate:
            if self._stopped is not None:
                raise RuntimeError(self._stopped)
            self._incoming.put(_Job(sequence, deliver, 0))

    def generate(self, sequence: Sequence) -> Iterator[Token]:
        out: queue.SimpleQueue[list[Token | BaseException | None]] = queue.SimpleQueue()
        self.submit(sequence, out.put)
        try:
            while True:
                try:
                    items = out.get(timeout=ALIVE_CHECK_S)
                except queue.Empty:
                    if (problem := self.failure()) is not None:
                        raise RuntimeError(problem) from None  # never wait on a scheduler that is gone
                    continue
                for item in items:
                    if item is None:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            # However the consumer stopped, the scheduler frees the slot at its next step.
            sequence.cancel.set()

    @property
    def held_sequences(self) -> int:
        """Slots whose tokens are in the KV cache: running, or kept for prefix reuse (a metric)."""
        return sum(1 for slot in self._slots if slot.tokens)

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
        self._thread.join()  # its last act fails whatever was in flight or queued
        llama_cpp.llama_batch_free(self._batch)
        self._ctx.close()
        self._model.close()

    # The scheduler thread: the only code that touches the context.

    def _run(self) -> None:
        waiting: list[_Job] = []
        try:
            self._schedule(waiting)
        finally:
            # However the loop ended (closed, or a bug that escaped it), no consumer waits for tokens
            # that will never come; `failure` tells the pool the engine is gone.
            with self._gate:
                self._stopped = "the engine was closed" if self._closed else "the batched scheduler stopped"
            gone = RuntimeError(self._stopped)
            for slot in self._slots:
                if slot.job is not None:
                    self._finish(slot, gone)
            while True:
                try:
                    job = self._incoming.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    waiting.append(job)
            for job in waiting:
                job.deliver([gone])
            self._flush()

    def _schedule(self, waiting: list[_Job]) -> None:
        while True:
            busy = any(slot.job is not None for slot in self._slots)
            try:
                # Block only when there is nothing to decode.
                job = self._incoming.get(block=not busy and not waiting)
            except queue.Empty:
                pass
            else:
                if job is None or not self._take(job, waiting):
                    return
            if not busy and waiting and not self._gather(waiting):
                return
            try:
                waiting[:] = self._admit(waiting)
                self._step(waiting)
            except Exception as exc:  # keep serving: fail the sequences in flight, not the service
                log.exception("batched decode step failed")
                for slot in self._slots:
                    if slot.job is not None:
                        self._finish(slot, RuntimeError(f"generation failed: {exc}"))
                        self._forget(slot)
            self._flush()

    def _queue(self, job: _Job, waiting: list[_Job]) -> None:
        self._admitted += 1
        job.order = self._admitted
        waiting.append(job)

    def _gather(self, waiting: list[_Job]) -> bool:
        """Idle, with sequences to start: wait for the requests still on their way, until none is
        (each arrived, or failed before it was submitted), the slots are full, or `gather_max_s` has
        passed (a slow upload, say). False when the engine was closed meanwhile."""
        deadline = time.perf_counter() + self._gather_max_s
        while self._coming() > 0 and len(waiting) < self.slots and time.perf_counter() < deadline:
            try:
                job = self._incoming.get(timeout=_GATHER_POLL_S)
            except queue.Empty:
                continue
            if job is None or not self._take(job, waiting):
                return False
        # Those queued since the last look: the count reaches 0 as the last one is queued, and the
        # event loop may have queued several while this thread waited for its turn.
        return self._take(None, waiting)

    def _take(self, job: _Job | None, waiting: list[_Job]) -> bool:
        """Queue `job` (if any) and every job already in `_incoming`; False once the engine is closed."""
        while True:
            if job is not None:
                self._queue(job, waiting)
            try:
                job = self._incoming.get_nowait()
            except queue.Empty:
                return True
            if job is None:
                return False

    def _admit(self, waiting: list[_Job]) -> list[_Job]:
        """Give waiting jobs free slots, in arrival order; returns those still waiting."""
        if self._hold and any(slot.job is not None for slot in self._slots):
            return waiting
        self._hold = False
        while waiting:
            job = waiting[0]
            if job.sequence.cancel.is_set():
                if job.sampler:  # a sequence put back for want of room keeps its sampler
                    llama_cpp.llama_sampler_free(job.sampler)
                    job.sampler = None
                job.deliver([None])
                waiting.pop(0)
                continue
            free = [slot for slot in self._slots if slot.job is None]
            if not free:
                break
            waiting.pop(0)
            if not job.tokens:
                job.tokens = list(job.sequence.prompt_tokens)
            if not job.placed:  # a sequence put back for want of room keeps its sampler's state
                try:
                    job.sampler = self._sampler(job.sequence)
                except Exception as exc:
                    job.deliver([exc])
                    continue
            # Seeded (#22): evaluated whole, so the same request samples the same tokens (a cached
            # prefix is evaluated in other batches, which moves the logits' last bits).
            slot, keep = self._place(job.tokens, free, reuse=job.sequence.sampling.seed is None)
            if not job.placed:
                job.placed = True
                job.sequence.cached_tokens = keep
            job.pending = job.tokens[keep:]
            slot.job = job
        return waiting

    def _place(self, tokens: list[int], free: list[_Slot], reuse: bool) -> tuple[_Slot, int]:
        """The free slot for `tokens`, holding the longest cached prefix of them that any slot has
        (at least one token is left to evaluate, so there are logits to sample from)."""
        most = len(tokens) - 1
        if not self._prefix_reuse:
            for slot in free:  # nothing will ever be reused: keep the cache empty of old prefixes
                if slot.tokens:
                    self._forget(slot)
            return free[0], 0
        self._drop_copies()  # (with reuse off, the loop above already left no idle slot holding tokens)
        if not reuse:
            slot = min(free, key=lambda s: s.used_at)
            self._forget(slot)
            return slot, 0
        own = {slot.seq_id: min(_common_prefix(slot.tokens, tokens), most) for slot in free}
        best = max(free, key=lambda s: (own[s.seq_id], -s.used_at))
        keep = own[best.seq_id]
        # Another slot, running or not, may hold more of it: share its cells instead.
        donor = max(
            (s for s in self._slots if s is not best),
            key=lambda s: min(_common_prefix(s.tokens, tokens), most),
            default=None,
        )
        if donor is not None:
            shared = min(_common_prefix(donor.tokens, tokens), most)
            if shared > keep:
                if keep == 0:  # nothing of its own worth keeping: take the least recently used slot
                    best = min(free, key=lambda s: s.used_at)
                self._forget(best)
                llama_cpp.llama_memory_seq_cp(self._memory, donor.seq_id, best.seq_id, 0, shared)
                best.tokens = donor.tokens[:shared]
                return best, shared
        if not llama_cpp.llama_memory_seq_rm(self._memory, best.seq_id, keep, -1):
            self._forget(best)
            keep = 0
        best.tokens = best.tokens[:keep]
        return best, keep

    def _drop_copies(self) -> None:
        """Forget idle slots whose tokens another slot holds too (as all or the start of its own).

        Such a copy serves no prefix the other cannot, and its cells are what scatters the next
        sequence: concurrent sequences' tokens are interleaved in the cache, and a sequence placed
        later fills the holes between the ones still kept, and attention over scattered cells is
        slower. Measured in-process (SmolLM2, 2 threads, 128 tokens): one sequence after eight
        identical ones decoded together ran at 156 tokens/s, 179 on an empty cache; with the copies
        dropped, 165 either way (same run). Repeated identical requests (retries, benchmarks,
        clients asking the same) leave exactly this; distinct answers kept for reuse still scatter."""
        for slot in self._slots:
            if slot.job is not None or not slot.tokens:
                continue
            n = len(slot.tokens)
            for other in self._slots:
                if other is slot or len(other.tokens) < n:
                    continue
                older = (other.used_at, other.seq_id) < (slot.used_at, slot.seq_id)
                if len(other.tokens) == n and other.job is None and older:
                    continue  # of two idle copies the most recently used stays: this one
                # The last token first: it tells most distinct sequences apart without a copy.
                if other.tokens[n - 1] == slot.tokens[-1] and other.tokens[:n] == slot.tokens:
                    self._forget(slot)
                    break

    def _sampler(self, sequence: Sequence) -> ctypes.c_void_p | None:
        """The sequence's llama.cpp sampler chain; None for plain greedy decoding, which `_step`
        does as an argmax over the logits: llama_sampler_sample first copies all of them into a
        candidate array (49k entries for SmolLM2), which cost more than the argmax itself, once
        per sequence per step (~0.15 ms each, 8 sequences: ~4% of an 8-stream step)."""
        s = sequence.sampling
        penalties = s.repeat_penalty != 1.0 or s.frequency_penalty or s.presence_penalty
        if s.temperature <= 0 and not sequence.grammar and not penalties:
            return None
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if penalties:
            add(
                chain,
                llama_cpp.llama_sampler_init_penalties(
                    self._n_vocab, _PENALTY_LAST_N, s.repeat_penalty, s.frequency_penalty, s.presence_penalty
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

    def _step(self, waiting: list[_Job]) -> None:
        """One llama_decode over every running slot: one token each for those generating, and
        what is left of the budget for the prompts still being evaluated."""
        for slot in self._slots:
            if slot.job is not None and slot.job.sequence.cancel.is_set():
                self._finish(slot, None)
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
        threads = self.governor.threads_for(n)
        if threads != self._threads:
            llama_cpp.llama_set_n_threads(self._ctx.ctx, threads, threads)
            self._threads = threads
        started = time.perf_counter()
        code = llama_cpp.llama_decode(self._ctx.ctx, batch)
        self.steps += 1
        if code == _NO_KV_SLOT:
            self._make_room(running, waiting)
            return
        if code != 0:
            for slot, _, _ in fed:
                self._finish(slot, RuntimeError(f"llama_decode failed (code {code})"))
                self._forget(slot)
            return
        self.governor.observe(n, time.perf_counter() - started)
        for slot, take, index in fed:
            job = slot.job
            assert job is not None
            slot.tokens.extend(job.pending[:take])
            del job.pending[:take]
            if index is None:
                continue
            logprob, top = self._logprobs(index, job.sequence.top_logprobs)
            # min_tokens / ignore_eos (conformance, #22): the sampler (or the argmax) reads the
            # logits from the context, so making end-of-generation tokens -inf there keeps them from being sampled.
            if not job.sequence.may_end(job.produced):
                pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, index)
                self.suppress_eog(np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)))
            if job.sampler is None:
                token_id = self._argmax(index)
            else:
                token_id = llama_cpp.llama_sampler_sample(job.sampler, self._ctx.ctx, index)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token_id):
                self._finish(slot, None)
                continue
            if logprob is not None:
                logprob, top = self._chosen_logprob(index, token_id, top)
            self._send(job, Token(token_id, self._piece(token_id, False), logprob, top))
            job.produced += 1
            job.tokens.append(token_id)
            if job.produced >= job.sequence.max_tokens:
                self._finish(slot, None)
            else:
                job.pending = [token_id]

    def _make_room(self, running: list[_Slot], waiting: list[_Job]) -> None:
        """The cache is full: drop an idle slot's prefix, or else put the newest sequence back
        in the queue; the next step tries again."""
        idle = [slot for slot in self._slots if slot.job is None and slot.tokens]
        if idle:
            self._forget(min(idle, key=lambda s: s.used_at))
            return
        if len(running) == 1:  # alone and still no room: it can never fit
            self._finish(running[0], RuntimeError("the KV cache cannot hold this sequence"))
            self._forget(running[0])
            return
        newest = max(running, key=lambda s: s.job.order if s.job else 0)
        job = newest.job
        assert job is not None
        log.info("KV cache full: sequence %d waits for room (%d tokens so far)", job.order, len(job.tokens))
        newest.job = None
        self._forget(newest)
        waiting.insert(0, job)
        self._hold = True

    def _send(self, job: _Job, item: Token | BaseException | None) -> None:
        """Tokens are handed over once per step (one wake-up of the consumer, not one per token)."""
        entry = self._outbox.get(id(job))
        if entry is None:
            self._outbox[id(job)] = (job, [item])
        else:
            entry[1].append(item)

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for job, items in outbox.values():
            try:
                job.deliver(items)
            except Exception:  # a consumer's failure must not stop the scheduler
                log.exception("delivering tokens failed")
                job.sequence.cancel.set()

    def _finish(self, slot: _Slot, last: BaseException | None) -> None:
        job = slot.job
        if job is None:
            return
        if job.sampler:
            llama_cpp.llama_sampler_free(job.sampler)
            job.sampler = None
        self._send(job, last)
        slot.job = None
        slot.used_at = time.monotonic()
        self._hold = False

    def _forget(self, slot: _Slot) -> None:
        llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
        slot.tokens = []

    def _argmax(self, index: int) -> int:
        # The first of equal maxima, as llama.cpp's greedy sampler picks.
        pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, index)
        return int(np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).argmax())

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
    """Length of the common start of two token lists, by bisection over slice comparisons (done in
    C: a Python loop over an 8k-token context per slot costs milliseconds per admission)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 1:  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo
