"""What the service needs from an inference engine, so engines (one-sequence llama.cpp, batched
llama.cpp, ONNX Runtime) can replace one another without touching the routes. Nothing here imports
an engine library: engine-neutral code (prompting, routes) depends on these types only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None


@dataclass
class Sequence:
    """One generation: the prompt as tokens, how long it may grow, and how it is sampled."""

    prompt_tokens: list[int]
    max_tokens: int
    sampling: Sampling = field(default_factory=Sampling)
    grammar: str | None = None
    """GBNF the output must match (tool calls, JSON modes); None: free text."""
    top_logprobs: int | None = None
    """Return the log-probability of each token and this many alternatives (None: none)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set by the request when its client leaves; the engine checks it before every token."""
    min_tokens: int = 0
    """End-of-generation tokens are not sampled before this many tokens have been produced."""
    ignore_eos: bool = False
    """End-of-generation tokens are never sampled: the sequence runs to `max_tokens`."""

    def may_end(self, produced: int) -> bool:
        """Whether an end-of-generation token may be sampled after `produced` tokens."""
        return not self.ignore_eos and produced >= self.min_tokens


@dataclass(frozen=True)
class Token:
    id: int
    piece: bytes
    """The token's bytes (a UTF-8 character may span tokens)."""
    logprob: float | None = None
    top_logprobs: dict[int, float] | None = None


class TextEngine(Protocol):
    """A loaded model. `generate` blocks and is called from a worker thread."""

    n_ctx: int
    slots: int
    """Sequences the engine generates at once (the admission queue lets this many requests run)."""
    chat_template: str | None
    bos_token: str
    eos_token: str

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        """`special=False` keeps text such as `<|im_start|>` from becoming control tokens."""
        ...

    def token_text(self, token_id: int) -> str: ...

    def unsupported(self, sequence: Sequence) -> str | None:
        """Why this engine cannot run the sequence as asked (a feature it lacks), or None."""
        ...

    def generate(self, sequence: Sequence) -> Iterator[Token]:
        """Yield sampled tokens until an end-of-generation token, `max_tokens`, or `sequence.cancel`."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class GrammarSupport(Protocol):
    """An engine that constrains output to a GBNF grammar (tools, function calling, JSON modes).
    Engines without it answer such requests with a 400 before any grammar is built."""

    def grammar_error(self, gbnf: str) -> str | None:
        """Why the engine rejects a grammar, or None when it compiles."""
        ...
