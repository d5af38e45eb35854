"""Keep the selections of two panes on corresponding words (no Qt here).

When the user picks a token (or a phrase) in one pane, the selection snaps to the whole words it
touches and the other pane selects the words aligned with them. Where a word has no counterpart
the other pane keeps what it shows, and :attr:`SelectionLink.unmatched` names the side whose
words have none: the difference view and the exports then compare nothing rather than two
unrelated words (as the side-by-side video does). Picking, next, words in the other pane that
have no counterpart either makes a pair chosen by hand, which is compared.
"""

from __future__ import annotations

from tam_desktop.models.events import Event
from tam_desktop.models.playback import PlaybackState
from tam_engine.compare.alignment import Side
from tam_engine.compare.comparison import Comparison

SIDES: tuple[Side, Side] = ("a", "b")


class SelectionLink:
    """Links the answer selections of pane A and pane B through a word alignment."""

    def __init__(self, state_a: PlaybackState, state_b: PlaybackState) -> None:
        self.states: dict[Side, PlaybackState] = {"a": state_a, "b": state_b}
        self.comparison: Comparison | None = None
        self.changed = Event("link_changed")  # () after either selection settled
        #: The side whose selection has no counterpart in the other answer (None: it has).
        self.unmatched: Side | None = None
        self._busy = False
        state_a.selection_changed.connect(lambda _sel: self._on_selection("a"))
        state_b.selection_changed.connect(lambda _sel: self._on_selection("b"))

    def set_comparison(self, comparison: Comparison | None) -> None:
        """Use this alignment (None: the panes are not linked) and sync B to A's selection."""
        self.comparison = comparison
        self.unmatched = None
        if comparison is not None:
            self._on_selection("a")
        else:
            self.changed.emit()

    def counterpart(self, side: Side) -> tuple[int, ...]:
        """The tokens of ``side`` to compare with the other side's selection: its selection,
        or nothing when the other side's words have no counterpart here."""
        other: Side = "b" if side == "a" else "a"
        st = self.states[side]
        if self.unmatched == other or st.kind != "answer":
            return ()
        return st.selection

    @property
    def aligned(self) -> bool:
        """Whether B shows exactly the words aligned with A's selection."""
        cmp, a, b = self.comparison, self.states["a"], self.states["b"]
        if cmp is None or a.kind != "answer" or b.kind != "answer" or not a.selection:
            return False
        return cmp.alignment.aligned_tokens("a", a.selection) == b.selection

    def _on_selection(self, side: Side) -> None:
        if self._busy:
            return
        cmp = self.comparison
        src = self.states[side]
        dst_side: Side = "b" if side == "a" else "a"
        dst = self.states[dst_side]
        if cmp is None or src.explanation is None or dst.explanation is None:
            self.unmatched = None
            self.changed.emit()
            return
        was_unmatched, self.unmatched = self.unmatched, None
        if src.kind == "answer" and src.selection:
            al = cmp.alignment
            words = al.word_tokens(side, src.selection)
            other = al.aligned_tokens(side, src.selection)
            self._busy = True
            try:
                src.select(words, src.token, "answer")
                if other:
                    dst.select(other, kind="answer")
                elif was_unmatched != dst_side:
                    self.unmatched = side
                # else: the other pane's words had no counterpart either, and the user now
                # picked these to go with them: a pair chosen by hand, compared as such.
            finally:
                self._busy = False
        self.changed.emit()
