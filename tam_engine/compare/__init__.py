"""Compare two explanations of the same media and prompt (model A and model B).

- :mod:`tam_engine.compare.alignment`: the two answers' words aligned (which word of A is
  which word of B).
- :mod:`tam_engine.compare.comparison`: :class:`~tam_engine.compare.comparison.Comparison`,
  the selections' maps and their difference, and what the side-by-side figure and its video
  show.

The figure is drawn by :mod:`tam_engine.render.compare_figure` and written as PNG or MP4 by
:mod:`tam_engine.export.compare`.
"""
