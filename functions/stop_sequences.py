"""Stop sequences over streamed text: emit what is certainly before a stop string, cut at the first one."""

from __future__ import annotations


class StopScanner:
    """Feed text deltas; get back the text safe to emit and whether a stop sequence was reached.

    Holds back up to ``len(longest stop) - 1`` characters that could be the start of a stop sequence.
    """

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self.stops), default=1) - 1
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        buffer = self._pending + text
        hits = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self._pending = ""
            return buffer[: min(hits)], True
        cut = max(0, len(buffer) - self._hold)
        self._pending = buffer[cut:]
        return buffer[:cut], False

    def flush(self) -> str:
        """What was held back, once the generation ended without a stop sequence."""
        pending, self._pending = self._pending, ""
        return pending
