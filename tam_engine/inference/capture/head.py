"""``lm_head``'s weight and bias, read from wherever they really are.

On one device, or split over GPUs, they are ordinary tensors. Offloaded by accelerate (CPU or
disk offload), the module's parameters are on the meta device and the real tensors sit in its
hook's ``weights_map``: an in-memory state dict (CPU offload), the checkpoint's own safetensors
file, or accelerate's ``.dat`` memory maps in the offload folder (disk offload). TAM needs only
a few hundred rows of the head (the engine) or one block of rows at a time (the candidates), so
:class:`OffloadedRows` reads just those rows from there and never materialises the whole head.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tam_engine.core.errors import ModelLoadError

__all__ = ["OffloadedRows", "head_parameter"]


def head_parameter(module: Any, name: str) -> Any:
    """``module.<name>`` as a tensor, or as :class:`OffloadedRows` when it is offloaded
    (``None`` when the module has no such parameter, e.g. no bias)."""
    param = getattr(module, name, None)
    if param is None or param.device.type != "meta":
        return param
    return OffloadedRows(module, name, tuple(param.shape), param.dtype)


class OffloadedRows:
    """Row access to an offloaded parameter: what the engine (``index_select``) and the
    candidates (``[start:stop]``) ask of a weight, answered by reading only those rows.

    The rows are returned on the CPU, in the dtype the model computes with.
    """

    def __init__(self, module: Any, name: str, shape: tuple[int, ...], dtype: Any) -> None:
        import torch

        self.shape = shape
        self.dtype = dtype
        self.device = torch.device("cpu")
        self._read = _row_reader(module, name, shape)

    def __len__(self) -> int:
        return int(self.shape[0])

    def index_select(self, dim: int, index: Any) -> Any:
        import torch

        if dim != 0:
            raise ValueError("offloaded lm_head parameters are read by rows (dim 0) only")
        idx = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for an lm_head of {self.shape[0]} rows")
        return self._read(idx).to(self.dtype)

    def __getitem__(self, key: slice) -> Any:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("offloaded lm_head parameters are sliced by contiguous rows only")
        start, stop, _ = key.indices(int(self.shape[0]))
        return self.index_select(0, np.arange(start, max(start, stop), dtype=np.int64))


def _row_reader(module: Any, name: str, shape: tuple[int, ...]) -> Any:
    """A function ``rows(idx) -> tensor`` reading the rows ``idx`` of the offloaded parameter."""
    import torch

    weights = getattr(getattr(module, "_hf_hook", None), "weights_map", None)
    if weights is None:
        raise ModelLoadError(
            f"lm_head's {name} is on the meta device but no offload hook says where it is.",
            "Load the model with a device map that keeps lm_head on a device, or report this.")
    dataset = getattr(weights, "dataset", None)
    key = getattr(weights, "prefix", "") + name
    state = getattr(dataset, "state_dict", None)
    if isinstance(state, dict) and key in state:  # CPU offload: the tensor is in memory
        tensor = state[key]
        return lambda idx: tensor.index_select(0, torch.as_tensor(idx))
    index = getattr(dataset, "index", None)
    info = index.get(key) if isinstance(index, dict) else None
    if info is not None and info.get("safetensors_file"):
        return _safetensors_rows(info["safetensors_file"], info.get("weight_name", key))
    folder = getattr(dataset, "save_folder", None)
    if info is not None and folder:
        return _memmap_rows(os.path.join(folder, f"{key}.dat"), info, shape)
    # An offload layout this module does not know: correct but not frugal, as accelerate's own
    # hook would load it for every forward pass anyway.
    tensor = weights[name]
    return lambda idx: tensor.index_select(0, torch.as_tensor(idx))


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Sorted unique ``idx`` as half-open runs of consecutive rows."""
    u = np.unique(idx)
    if u.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(u) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [u.size]])
    return [(int(u[a]), int(u[b - 1]) + 1) for a, b in zip(starts, ends, strict=True)]


def _gather(idx: np.ndarray, read_run: Any) -> Any:
    """Read each run of rows once, then put the rows in the order (and repeats) of ``idx``."""
    import torch

    runs = _runs(idx)
    if not runs:
        return read_run(0, 0)
    blocks = [read_run(a, b) for a, b in runs]
    got = torch.cat(blocks) if len(blocks) > 1 else blocks[0]
    order = np.unique(idx)
    return got.index_select(0, torch.as_tensor(np.searchsorted(order, idx)))


def _safetensors_rows(path: str, tensor_name: str) -> Any:
    from safetensors import safe_open

    def rows(idx: np.ndarray) -> Any:
        with safe_open(path, framework="pt", device="cpu") as f:
            part = f.get_slice(tensor_name)
            return _gather(idx, lambda a, b: part[a:b])

    return rows


def _memmap_rows(path: str, info: dict[str, Any], shape: tuple[int, ...]) -> Any:
    import torch

    bf16 = info.get("dtype") == "bfloat16"  # accelerate stores bfloat16 as int16
    dtype = np.int16 if bf16 else np.dtype(info["dtype"])
    stored = tuple(info.get("shape", shape))

    def rows(idx: np.ndarray) -> Any:
        mm = np.memmap(path, dtype=dtype, mode="r", shape=stored)

        def read(a: int, b: int) -> Any:
            t = torch.from_numpy(np.array(mm[a:b]))
            return t.view(torch.bfloat16) if bf16 else t

        return _gather(idx, read)

    return rows
