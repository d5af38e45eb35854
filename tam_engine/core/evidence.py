"""Per-token visual evidence: how much of a token's evidence is visual rather than textual.

The joint normalisation (TAM-METHOD section 5) puts a token's vision scores after ECI and its
context text relevances on one scale; a token whose vision peak is small beside its text peak
gets a dim map. The visual-evidence score makes that comparison one number, before the filter:

    visual_evidence = v / (v + t),  v = max of the vision scores after ECI (>= 0),
                                    t = max of the context text relevances (>= 0, clipped
                                        logits of the token's class, section 3)

1 means all evidence is visual, 0 none; 0 when both are 0. It is unitless (both are clipped
logits of the same class), so it compares across tokens and runs. It needs the float ECI stage:
available for a fresh explanation and for a file saved with its float stages; ``None``
otherwise (never a guess).
"""

from __future__ import annotations

import numpy as np

from tam_engine.core.token_maps import StagesUnavailable, TokenMaps

__all__ = ["VISUAL_EVIDENCE_LABEL", "visual_evidence"]

#: What the score is, in the words every view and export uses.
VISUAL_EVIDENCE_LABEL = "visual share of the evidence (vision peak after ECI vs text peak)"

_BLOCK = 64  # tokens per block: no float copy of every map at once


def visual_evidence(tm: TokenMaps) -> np.ndarray | None:
    """The score of every token of ``tm`` (float32, in [0, 1]), or ``None`` without the
    float ECI stage."""
    n = len(tm)
    rel = np.where(tm.context, np.maximum(np.asarray(tm.relevance, np.float64), 0.0), 0.0)
    text = rel.max(axis=1, initial=0.0) if rel.shape[1] else np.zeros(n)
    vis = np.zeros(n)
    if tm.n_vision:
        try:
            for s in range(0, n, _BLOCK):
                idx = np.arange(s, min(n, s + _BLOCK))
                vis[idx] = np.maximum(tm.stage_rows("eci", idx).max(axis=1), 0.0)
        except StagesUnavailable:
            return None
    total = vis + text
    out = np.zeros(n)
    np.divide(vis, total, out=out, where=total > 0)
    return out.astype(np.float32)
