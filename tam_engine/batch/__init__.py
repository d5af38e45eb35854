"""Explain whole datasets: many items into one output folder, resumable and data-parallel.

:mod:`items` turns a folder, a glob or a manifest into :class:`BatchItem` s; :mod:`runner`
explains them (sharded over the processes of an ``accelerate launch``), writing one
``.tam.npz`` per item and the index; :mod:`index` owns the index's records and reading it back.
"""
