"""Split the input into sentences, the unit that is synthesised, streamed and checked for cancellation.

Piper's own splitting happens inside one call (espeak-ng's clauses), so it cannot stream or stop
between sentences; splitting here first gives a first audio chunk after one sentence, and a point
between sentences where a client that left stops the work. Abbreviations and initials ("Mr.",
"e.g.", "D.C.") do not end a sentence, and a very long sentence is cut at a clause boundary so no
single piece delays the stream by more than about `MAX_CHARS` characters of speech.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 300
# A run of sentence-ending punctuation and any closing quotes or brackets, then space or the end.
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)")
_CLAUSE = re.compile(r"[,;:—–]\s")
# Words that are also ordinary sentence ends ("no", "sat", "sun", "mar") are left out on purpose.
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al", "fig",
        "vol", "approx", "dept", "inc", "ltd", "corp", "jan", "feb", "apr", "jul", "aug", "sep", "sept", "oct",
        "nov", "dec", "mon", "tue", "wed", "thu", "fri",
    }
)  # fmt: skip


def _ends_sentence(text: str, start: int, end: int) -> bool:
    mark = text[start:end]
    if mark.rstrip("\"'”’)]") != ".":
        return True  # "?", "!", "..." always end one
    word = re.search(r"(\S+)$", text[:start])
    token = word.group(1).lower().lstrip("\"'“‘([") if word else ""
    if token in _ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)*[a-z]", token):
        return False  # "Dr." or an initial / "D.C." / "e.g."
    follower = re.match(r"\s*(\S)", text[end:])
    return follower is None or not follower.group(1).islower()


def _sentences_of(paragraph: str) -> list[str]:
    pieces, begin = [], 0
    for match in _END.finditer(paragraph):
        if _ends_sentence(paragraph, match.start(), match.end()):
            pieces.append(paragraph[begin : match.end()])
            begin = match.end()
    pieces.append(paragraph[begin:])
    return [p.strip() for p in pieces if p.strip()]


def _bounded(sentence: str, max_chars: int) -> list[str]:
    """A sentence cut into pieces of at most `max_chars`: at the last clause mark, else the last space."""
    pieces = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        clauses = list(_CLAUSE.finditer(window))
        cut = clauses[-1].start() + 1 if clauses else window.rfind(" ")
        if cut <= 0:
            cut = max_chars  # one unbroken word: cut it anyway
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence] if sentence else pieces


def _speakable(text: str) -> str:
    """Control characters and lone surrogates (JSON can carry both) as spaces: espeak-ng's C bridge
    refuses them with an exception, and they carry nothing to say."""
    return "".join(" " if (unicodedata.category(c) in ("Cc", "Cs") and c != "\n") else c for c in text)


def split(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """The sentences of `text`, in order, none longer than `max_chars`; line breaks end sentences too."""
    sentences: list[str] = []
    for paragraph in re.split(r"\s*\n\s*", _speakable(text)):
        for sentence in _sentences_of(paragraph):
            sentences += _bounded(sentence, max_chars)
    return [s for s in sentences if any(c.isalnum() for c in s)]
