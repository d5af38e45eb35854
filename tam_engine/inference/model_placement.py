"""Where a model's weights go when it is loaded: one device, split over the GPUs, offloaded to
CPU memory and disk, or quantised to 4/8 bits.

The work is done by accelerate's big-model inference (``device_map``, ``max_memory``,
``offload_folder``) and by bitsandbytes through transformers; this module only turns the
user's choice into ``from_pretrained`` arguments and checks what TAM relies on: ``lm_head``
keeps real floating-point rows (TAM reads them), whatever the placement or the checkpoint's own
quantisation.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from tam_engine.core.errors import ModelLoadError

__all__ = ["ModelPlacement", "Quantization", "check_checkpoint_quantization", "check_head",
           "input_device", "parse_max_memory", "placement_kwargs"]

Quantization = Literal["4bit", "8bit"]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$", re.IGNORECASE)
QUANT_HINT = ("Install it with `pip install tam-desktop[quant]` (bitsandbytes; most of its builds "
              "need an NVIDIA GPU), or load the model without 4/8-bit quantisation.")


@dataclass(frozen=True)
class ModelPlacement:
    """How to place a model's weights.

    ``device_map`` ``None`` is one device (the ``device`` of :func:`load_model`), ``"auto"``
    lets accelerate fill the GPUs, then CPU memory, then disk, within ``max_memory``; a dict
    (module name -> ``"cpu"``, ``"disk"``, a GPU index or ``"cuda:N"``) is a custom map.
    ``offload_folder`` holds the weights that go to disk; ``quantization`` loads the linear
    layers in 4 or 8 bits with bitsandbytes, ``lm_head`` kept unquantised.
    """

    device_map: str | dict[str, Any] | None = None
    max_memory: dict[int | str, str] | None = None
    offload_folder: str | None = None
    quantization: Quantization | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_single_device(self) -> bool:
        return self.device_map is None and self.quantization is None

    def describe(self) -> str:
        """One short line for logs and the app: ``"auto, 4-bit, offload to /x"``."""
        parts = ["one device" if self.device_map is None else
                 ("auto split" if self.device_map == "auto" else "custom map")]
        if self.max_memory:
            parts.append("max " + ",".join(f"{k}={v}" for k, v in self.max_memory.items()))
        if self.quantization:
            parts.append(self.quantization.replace("bit", "-bit"))
        if self.offload_folder:
            parts.append(f"offload to {self.offload_folder}")
        return ", ".join(parts)


def parse_max_memory(text: str) -> dict[int | str, str]:
    """``"0=20GiB,1=20GiB,cpu=64GiB"`` -> ``{0: "20GiB", 1: "20GiB", "cpu": "64GiB"}``.

    Keys are GPU indices, ``cpu`` or ``mps``; sizes a number with an optional unit (B, KB, MB,
    GB, TB and their KiB... forms, as accelerate reads them).
    """
    out: dict[int | str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, size = part.partition("=")
        key = key.strip().lower()
        if not sep or not _SIZE.match(size):
            raise ModelLoadError(f"Cannot read {part!r} in the memory limits {text!r}.",
                                 "Write DEVICE=SIZE pairs, e.g. 0=20GiB,1=20GiB,cpu=64GiB.")
        if key.isdigit():
            out[int(key)] = size.strip()
        elif key in ("cpu", "mps", "disk"):
            out[key] = size.strip()
        else:
            raise ModelLoadError(f"Unknown device {key!r} in the memory limits {text!r}.",
                                 "Use GPU numbers (0, 1, ...), cpu or mps.")
    if not out:
        raise ModelLoadError("The memory limits are empty.",
                             "Write DEVICE=SIZE pairs, e.g. 0=20GiB,1=20GiB,cpu=64GiB.")
    return out


def bitsandbytes_available() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def _quantization_config(config: Any) -> Any:
    q = getattr(config, "quantization_config", None)
    if q is None:
        text = getattr(config, "text_config", None)
        q = getattr(text, "quantization_config", None) if text is not None else None
    if q is not None and not isinstance(q, dict):
        q = q.to_dict() if hasattr(q, "to_dict") else vars(q)
    return q


def check_checkpoint_quantization(config: Any, placement: ModelPlacement, name: str) -> None:
    """Refuse, before any weight is read, a checkpoint whose own quantisation covers ``lm_head``
    (as far as its config says) or that is asked to be quantised a second time."""
    q = _quantization_config(config)
    if q is None:
        return
    method = str(q.get("quant_method", "unknown"))
    if placement.quantization is not None:
        raise ModelLoadError(
            f"{name} is already quantised ({method}); it cannot also be loaded in "
            f"{placement.quantization.replace('bit', '-bit')}.",
            "Load it without --load-in-4bit/--load-in-8bit: it loads as its quantisation says.")
    # GPTQ's "lm_head": true quantises the head; AWQ/compressed-tensors name the kept modules.
    if q.get("lm_head") is True:
        raise _head_refusal(name, method)


def _head_refusal(name: str, method: str) -> ModelLoadError:
    return ModelLoadError(
        f"{name} is quantised ({method}) with its lm_head quantised too; TAM reads lm_head's "
        "rows as real numbers and cannot explain it faithfully.",
        "Use a checkpoint that keeps lm_head in 16/32-bit floats (most do), or the unquantised "
        "model, optionally with --load-in-4bit (lm_head stays unquantised).")


def check_head(head: Any, name: str, config: Any) -> None:
    """After loading: ``lm_head`` must be a plain linear layer with floating-point weights
    (bitsandbytes, GPTQ, AWQ and FP8 layers fail this), wherever its weight lives."""
    import torch

    weight = getattr(head, "weight", None)
    ok = (isinstance(head, torch.nn.Linear) and weight is not None
          and weight.dtype in (torch.float16, torch.bfloat16, torch.float32)
          and type(head).__module__.startswith("torch."))
    if not ok:
        q = _quantization_config(config) or {}
        raise _head_refusal(name, str(q.get("quant_method", type(head).__name__)))


def head_module_name(model: Any, head: Any) -> str:
    """The module path of ``lm_head`` in ``model`` (for bitsandbytes' skip list)."""
    for module_name, module in model.named_modules():
        if module is head:
            return module_name
    return "lm_head"


def placement_kwargs(placement: ModelPlacement, device: Any, dtype: Any,
                     head_name: str = "lm_head") -> dict[str, Any]:
    """The ``from_pretrained`` keyword arguments that place the weights as asked."""
    if placement.quantization is not None and not bitsandbytes_available():
        raise ModelLoadError(
            f"{placement.quantization.replace('bit', '-bit')} loading needs the bitsandbytes "
            "package, which is not installed.", QUANT_HINT)
    if placement.device_map is None:
        if placement.quantization is not None:
            return {"device_map": {"": str(device)}, **_bnb_kwargs(placement, dtype, head_name)}
        # Straight onto an accelerator (no full copy in CPU memory first).
        return {} if device.type == "cpu" else {"device_map": {"": str(device)}}
    kwargs: dict[str, Any] = {"device_map": placement.device_map}
    if placement.max_memory:
        kwargs["max_memory"] = dict(placement.max_memory)
    if placement.offload_folder:
        kwargs["offload_folder"] = placement.offload_folder
    if placement.quantization is not None:
        kwargs.update(_bnb_kwargs(placement, dtype, head_name))
    return kwargs


def _bnb_kwargs(placement: ModelPlacement, dtype: Any, head_name: str) -> dict[str, Any]:
    from transformers import BitsAndBytesConfig

    # llm_int8_skip_modules replaces transformers' own skip list: lm_head must be named, as TAM
    # reads its rows (check_head verifies it after loading). CPU/disk offload of 8-bit layers
    # needs llm_int8_enable_fp32_cpu_offload.
    common = {"llm_int8_skip_modules": [head_name],
              "llm_int8_enable_fp32_cpu_offload": placement.device_map is not None}
    if placement.quantization == "4bit":
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype,
                                    bnb_4bit_quant_type="nf4", **common)
    else:
        config = BitsAndBytesConfig(load_in_8bit=True, **common)
    return {"quantization_config": config}


def input_device(model: Any, fallback: Any) -> Any:
    """Where a split model takes its inputs: the device its input embeddings compute on (an
    offloaded layer's weight is on the meta device; its accelerate hook knows where it runs)."""
    import torch

    try:
        emb = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return fallback
    hook = getattr(emb, "_hf_hook", None)
    execution = getattr(hook, "execution_device", None)
    if execution is not None:
        return torch.device(f"cuda:{execution}" if isinstance(execution, int) else execution)
    weight = getattr(emb, "weight", None)
    if weight is not None and weight.device.type != "meta":
        return weight.device
    return fallback
