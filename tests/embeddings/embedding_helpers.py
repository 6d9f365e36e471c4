"""Sentences and vector arithmetic the embedding tests share."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

# Short and long, punctuation, accents, other scripts, emoji, numbers, an empty string.
SENTENCES = [
    "A man is eating food.",
    "A man eats a meal.",
    "The stock market fell sharply today.",
    "x",
    "",
    "Héllo wörld: naïve café, crème brûlée.",
    "東京は日本の首都です。",
    "Emoji are tokens too 😀🚀",
    "3.14159 and 2.71828 are famous constants; 42 is the answer.",
    "The quick brown fox jumps over the lazy dog. " * 12,
    "   leading and trailing spaces   ",
    "UPPER CASE and lower case read the same to an uncased model",
]

PARAPHRASES = [
    ("A man is eating food.", "A man eats a meal.", "The stock market fell sharply today."),
    ("The cat sits on the mat.", "A cat is sitting on a rug.", "Quarterly earnings beat expectations."),
    ("How do I reset my password?", "I forgot my password, how can I change it?", "The train leaves at noon."),
]


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def decode_base64(text: str) -> np.ndarray:
    """OpenAI's base64 layout: little-endian float32."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def metric(page: str, name: str) -> float:
    """The sum of a metric's samples in a Prometheus text page."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith(name) and line[len(name)] in " {"
    )
