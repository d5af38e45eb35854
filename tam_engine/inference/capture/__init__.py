"""Greedy generation that records what TAM needs (:func:`capture`).

- :mod:`.generate`: the generate loop and :func:`capture`, which builds the ``TamInputs``;
- :mod:`.hooks`: the final-norm hook and the per-step stopping criterion (streaming, cancel);
- :mod:`.candidates`: the top-k candidates, per step or from the states;
- :mod:`.detokenise`: per-token texts.
"""

from __future__ import annotations

from tam_engine.inference.capture.generate import capture

__all__ = ["capture"]
