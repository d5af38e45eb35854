"""The compare link between two playback states, without any widget."""

from __future__ import annotations

from tam_desktop.compare import SelectionLink
from tam_desktop.models import PlaybackState
from tam_engine.compare.comparison import Comparison
from tam_engine.testing.synthetic import compare_pair


def test_selection_link_between_two_states():
    a, b = compare_pair()
    sa, sb = PlaybackState(), PlaybackState()
    link = SelectionLink(sa, sb)
    sa.set_content(a.media, a)
    sb.set_content(b.media, b)
    cmp = Comparison.of(a, b)
    link.set_comparison(cmp)
    sa.set_token(2)                              # "circle" -> B's "circle"
    assert sb.selection == (2,) and link.aligned
    sb.set_token(6)                              # B "square" -> A "square"
    assert sa.selection == (6,) and sa.token == 6
    sa.set_token(1)                              # A "red": no counterpart, B stays put
    assert sb.selection == (6,) and not link.aligned
    sb.set_token(1)                              # B's first "blue": no counterpart either
    assert sa.selection == (1,)
    sa.set_token(5)                              # the "blue" both share
    assert sb.selection == (5,)
    sa.select([6, 7], current=7)
    assert sa.selection == (6, 7) and sa.token == 7 and sb.selection == (6, 7)
    link.set_comparison(None)
    sa.set_token(2)
    assert sb.selection == (6, 7)                # unlinked
