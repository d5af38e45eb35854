"""The batch gallery: a virtualised grid of a batch folder's items (File > Open Batch)."""
