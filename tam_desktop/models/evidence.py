"""The evidence flags of a shown answer, computed once per explanation (Qt-free).

The token strip underlines the flagged tokens and the timeline marks their bars: both read
:func:`answer_flags`, which computes :func:`tam_engine.core.flags.evidence_flags` once per
explanation (a thousand-token answer takes tens of milliseconds, on the UI thread twice per
opened file before). :func:`prepare_for_view` does that work, and reads the first map and
frame, on the thread that read the file, so showing it costs the UI thread less.
"""

from __future__ import annotations

import threading
import weakref

from tam_engine.core.explanation import Explanation
from tam_engine.core.flags import EvidenceFlags, evidence_flags

_lock = threading.Lock()
# id(explanation) -> (a weak reference to it, its flags): an entry whose explanation is gone
# (or whose id was reused) is recomputed, never trusted.
_flags: dict[int, tuple[weakref.ref, EvidenceFlags]] = {}


def answer_flags(ex: Explanation) -> EvidenceFlags | None:
    """The evidence flags of ``ex``'s answer (None without answer tokens), computed once."""
    if not ex.n_answer:
        return None
    with _lock:
        entry = _flags.get(id(ex))
    if entry is not None and entry[0]() is ex:
        return entry[1]
    flags = evidence_flags(ex.answer, ex.special())
    with _lock:
        for key in [k for k, (ref, _) in _flags.items() if ref() is None]:
            del _flags[key]
        _flags[id(ex)] = (weakref.ref(ex), flags)
    return flags


def prepare_for_view(ex: Explanation) -> Explanation:
    """Off the UI thread, after reading a file: the work showing ``ex`` would otherwise do
    there first (the flags; the first answer map and the first frame, which a file read on
    demand then holds decoded). Returns ``ex``."""
    answer_flags(ex)
    if ex.n_answer and ex.grids:
        ex.vision_vector(0)
    if ex.media and ex.media[0].n_frames:
        ex.media[0].frames[0]  # noqa: B018 (read for its cache)
    return ex
