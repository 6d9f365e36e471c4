"""Fast tokens share a write for MAX_HOLD_S at most; the first token and slow ones never wait."""

from __future__ import annotations

from nexa_text.streaming import HOLD_GAP_S, MAX_HOLD_S, WritePacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _stream(gaps: list[float]) -> list[str]:
    clock = Clock()
    pacer = WritePacer(clock)
    writes = []
    for index, gap in enumerate(gaps):
        clock.now += gap
        if text := pacer.offer(f"<{index}>"):
            writes.append(text)
    if rest := pacer.flush():
        writes.append(rest)
    return writes


def test_fast_tokens_share_writes_for_a_bounded_time_and_none_is_lost() -> None:
    fast = MAX_HOLD_S / 2.5  # 2 gaps fit in the hold time, the third ends it
    writes = _stream([0.05] + [fast] * 8)
    assert writes == ["<0>", "<1><2><3><4>", "<5><6><7><8>"]
    # Tokens slower than the hold time but under HOLD_GAP_S still go out in pairs.
    between = (MAX_HOLD_S + HOLD_GAP_S) / 2
    assert _stream([0.05] + [between] * 4) == ["<0>", "<1><2>", "<3><4>"]


def test_the_first_token_and_slow_tokens_are_written_at_once() -> None:
    slow = HOLD_GAP_S * 3
    # <3> follows fast, so it waits for a next token; there is none, and the end flushes it.
    assert _stream([0.0001, slow, slow, 0.0001]) == ["<0>", "<1>", "<2>", "<3>"]
    # The first token never waits, however fast the next one comes.
    assert _stream([0.0001])[0] == "<0>"


def test_a_held_token_goes_out_with_the_end() -> None:
    fast = HOLD_GAP_S / 2
    assert _stream([0.05, fast]) == ["<0>", "<1>"]  # <1> was held, then flushed
