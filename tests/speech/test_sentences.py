"""The sentence splitter that decides what is synthesised (and streamed) together."""

from __future__ import annotations

from nexa_audio.speech.sentences import MAX_CHARS, split
from nexa_audio.speech.voices import OPENAI_VOICES, voice_table


def test_sentences_end_at_their_punctuation_but_not_at_abbreviations_or_initials() -> None:
    text = "Hello there. How are you? Fine! Mr. Smith went to Washington, D.C. on Monday. It cost 3.50 dollars."
    assert split(text) == [
        "Hello there.",
        "How are you?",
        "Fine!",
        "Mr. Smith went to Washington, D.C. on Monday.",
        "It cost 3.50 dollars.",
    ]


def test_closing_quotes_stay_with_their_sentence_and_lines_end_sentences() -> None:
    assert split('He said "stop." Then he left...\nNew line\n\nNew paragraph') == [
        'He said "stop."',
        "Then he left...",
        "New line",
        "New paragraph",
    ]


def test_long_sentences_are_cut_at_clauses_then_spaces() -> None:
    clauses = ", ".join(["one clause of a long sentence"] * 40) + "."
    pieces = split(clauses)
    assert len(pieces) > 1 and all(len(p) <= MAX_CHARS for p in pieces)
    assert all(p.endswith((",", ".")) for p in pieces)
    assert " ".join(pieces) == clauses
    unbroken = "x" * (2 * MAX_CHARS + 5)
    assert "".join(split(unbroken)) == unbroken


def test_nothing_to_speak_gives_no_sentences() -> None:
    assert split("  ... !? \n ") == []


def test_openai_voices_map_onto_the_speakers_of_the_voice() -> None:
    one = voice_table(("joe",))
    assert {one[name] for name in OPENAI_VOICES} == {0} and one["joe"] == 0
    many = voice_table(tuple(f"speaker{i}" for i in range(20)))
    assert [many[name] for name in OPENAI_VOICES] == list(range(len(OPENAI_VOICES)))
    assert many["speaker19"] == 19


def test_characters_the_phonemizer_refuses_become_spaces() -> None:
    assert split("a\u0000b \ud800 c\x07dog.\tNext") == ["a b   c dog.", "Next"]
