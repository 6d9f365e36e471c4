"""Token bytes to text deltas: whole UTF-8 characters only, and nothing that may turn out to be the
start of a stop sequence (which must never reach the client).

A character cut off by the token limit (the first bytes of an emoji, say) is dropped at the end,
never sent as U+FFFD; bytes that are invalid UTF-8 in themselves still become U+FFFD."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class TextAssembler:
    def __init__(self, stops: Sequence[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in stops if s]
        self._held = ""
        self.text = ""
        """Everything released so far."""
        self.stopped = False
        """A stop sequence was generated; the text ends before it."""

    def feed(self, piece: bytes) -> str:
        if self.stopped:
            return ""
        self._held += self._decoder.decode(piece)
        cut = min((i for i in (self._held.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            return self._release(self._held[:cut])
        keep = max((k for s in self._stops for k in range(1, len(s)) if self._held.endswith(s[:k])), default=0)
        return self._release(self._held[: len(self._held) - keep])

    def finish(self) -> str:
        """The rest, once generation has ended without a stop sequence."""
        if self.stopped:
            return ""
        # Not `final=True`: that turns an incomplete trailing character into U+FFFD. The decoder
        # holds only such an incomplete tail (invalid bytes were already replaced), so it is dropped.
        self._decoder.reset()
        return self._release(self._held)

    def _release(self, text: str) -> str:
        self._held = self._held[len(text) :] if not self.stopped else ""
        self.text += text
        return text
