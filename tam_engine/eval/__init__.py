"""The paper's evaluation: word-level Obj-IoU / Func-IoU / F1-IoU and caption metrics.

``datasets`` reads evaluation sets, ``words`` groups tokens into words and classes them offline,
``metrics`` holds the pure metric functions, ``scoring`` scores one explanation, ``runner`` runs
a resumable, data-parallel evaluation, and ``explainers`` connects a loaded model to it.
"""

from __future__ import annotations
