"""TextAssembler: token bytes to text deltas, whole characters only, stop sequences never leaked."""

from __future__ import annotations

from nexa_text.assembler import TextAssembler


def feed_all(assembler: TextAssembler, pieces: list[bytes]) -> list[str]:
    return [assembler.feed(piece) for piece in pieces]


def test_a_stop_sequence_split_across_tokens_is_held_back_and_never_released() -> None:
    assembler = TextAssembler(["END"])
    assert feed_all(assembler, [b"hello E", b"N", b"D and more"]) == ["hello ", "", ""]
    assert assembler.stopped
    assert assembler.text == "hello "
    assert assembler.finish() == ""  # nothing after the stop, ever
    assert assembler.feed(b"later") == ""


def test_a_held_prefix_that_is_not_a_stop_is_released_with_the_next_token() -> None:
    assembler = TextAssembler(["END"])
    assert feed_all(assembler, [b"say E", b"N", b"ough"]) == ["say ", "", "ENough"]
    assert not assembler.stopped


def test_held_text_is_released_when_generation_ends_without_a_stop() -> None:
    assembler = TextAssembler(["END"])
    assert assembler.feed(b"the E") == "the "
    assert assembler.finish() == "E"
    assert assembler.text == "the E"


def test_a_utf8_character_split_across_tokens_is_released_whole() -> None:
    assembler = TextAssembler([])
    e_acute = "é".encode()
    emoji = "🙂".encode()
    assert feed_all(assembler, [b"caf" + e_acute[:1], e_acute[1:] + b" ", emoji[:2], emoji[2:3], emoji[3:]]) == [
        "caf",
        "é ",
        "",
        "",
        "🙂",
    ]


def test_a_stop_sequence_made_of_a_split_multibyte_character() -> None:
    assembler = TextAssembler(["。"])
    stop = "。".encode()
    assert feed_all(assembler, [b"done" + stop[:1], stop[1:2], stop[2:] + b"x"]) == ["done", "", ""]
    assert assembler.stopped and assembler.text == "done"


def test_the_earliest_of_several_stops_cuts() -> None:
    assembler = TextAssembler(["two", "one"])
    assert assembler.feed(b"zero one two") == "zero "


def test_invalid_bytes_become_replacement_characters_not_errors() -> None:
    assembler = TextAssembler([])
    assert assembler.feed(b"a\xff") == "a\ufffd"
    assert assembler.feed(b"\xc3") == ""  # could still become a character
    assert assembler.finish() == ""  # it never did: a character cut at the end is dropped, not U+FFFD


def test_empty_stops_are_ignored() -> None:
    assembler = TextAssembler(["", "zz"])
    assert assembler.feed(b"abc") == "abc"
