"""Log-probabilities from raw logits, as OpenAI reports them (before temperature and filtering):
the maths every engine shares, done once."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log(softmax(logits)) in float64, stable for large logits."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits)
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum())
    return result


def top_alternatives(logprobs: np.ndarray, n: int) -> dict[int, float]:
    """The `n` most likely token ids with their log-probabilities, most likely first."""
    if n <= 0:
        return {}
    n = min(n, logprobs.size)
    best = np.argpartition(-logprobs, n - 1)[:n]
    return {int(i): float(logprobs[i]) for i in best[np.argsort(-logprobs[best], kind="stable")]}


def token_logprobs(
    logits: np.ndarray | None, token_id: int, top_n: int | None
) -> tuple[float | None, dict[int, float] | None]:
    """The chosen token's log-probability and the `top_n` best (None, None when not asked for)."""
    if logits is None or top_n is None:
        return None, None
    logprobs = log_softmax(logits)
    return float(logprobs[token_id]), top_alternatives(logprobs, top_n)
