"""The log-probability maths the engines share."""

from __future__ import annotations

import math

import numpy as np

from nexa_text.logprobs import log_softmax, token_logprobs, top_alternatives


def test_log_softmax_is_a_distribution_and_stable_for_huge_logits() -> None:
    logits = np.array([1000.0, 999.0, 0.0, -1e9], dtype=np.float32)
    result = log_softmax(logits)
    assert result.dtype == np.float64
    assert math.isclose(float(np.exp(result).sum()), 1.0, rel_tol=1e-12)
    assert math.isclose(float(result[0] - result[1]), 1.0, rel_tol=1e-9)
    assert np.all(np.isfinite(result[:3]))


def test_top_alternatives_are_the_best_in_order() -> None:
    logprobs = log_softmax(np.array([0.1, 3.0, -2.0, 2.0, 2.5]))
    assert list(top_alternatives(logprobs, 3)) == [1, 4, 3]
    assert top_alternatives(logprobs, 0) == {}
    assert len(top_alternatives(logprobs, 50)) == 5  # more than the vocabulary: all of it


def test_token_logprobs_of_the_chosen_token() -> None:
    logits = np.array([0.0, 1.0, 2.0])
    chosen, top = token_logprobs(logits, 0, 1)
    assert chosen is not None and math.isclose(chosen, float(log_softmax(logits)[0]))
    assert top is not None and list(top) == [2]
    assert token_logprobs(logits, 0, None) == (None, None)
    assert token_logprobs(None, 0, 2) == (None, None)
