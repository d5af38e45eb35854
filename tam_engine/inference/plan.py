"""Plan before loading: how much memory a model needs, what this machine has, and the placement
that fits.

The model is built from its config alone on the meta device (accelerate's
``init_empty_weights``: no weight is read or allocated), so its parameters are counted exactly,
split into the linear layers bitsandbytes would quantise and the rest (embeddings, norms,
convolutions, biases, and ``lm_head``, which stays unquantised because TAM reads its rows). The
running cost is the KV cache of a long multimodal prompt plus a fixed allowance for activations
and the CUDA context.

:func:`propose` then picks what a person would: the whole model on one GPU when it fits; split
over the GPUs when together they hold it (exact weights, little slower); 8-bit, then 4-bit, on
one GPU or split, when only quantised weights fit (fast, approximate weights); then CPU memory
and finally disk offload (exact weights, much slower). Without a CUDA GPU: the CPU when memory
allows, else disk offload.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tam_engine.inference.model_placement import ModelPlacement, Quantization

__all__ = ["GiB", "Machine", "MemoryNeed", "ModelSize", "Proposal", "model_size", "propose",
           "this_machine"]

GiB = 1024 ** 3
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: Bytes per quantised parameter: NF4 is half a byte plus one float32 absmax per 64 weights;
#: LLM.int8 one byte plus one float32 scale per row (negligible).
_QUANT_BYTES = {"4bit": 0.5 + 4 / 64, "8bit": 1.0}
#: A long multimodal prompt (several images or a video) plus the answer.
CONTEXT_TOKENS = 8192
#: Activations, the CUDA context and the allocator's slack, on each device that runs layers.
WORKING_ALLOWANCE = GiB
#: Share of a GPU's or of free CPU memory a plan may fill (the rest absorbs fragmentation).
GPU_SHARE, RAM_SHARE = 0.92, 0.8


@dataclass(frozen=True)
class ModelSize:
    """A model's parameters counted from its config: those in quantisable linear layers and the
    rest, and its KV cache per token per byte of dtype."""

    name: str
    linear_params: int
    other_params: int
    kv_values_per_token: int

    @property
    def params(self) -> int:
        return self.linear_params + self.other_params

    def need(self, dtype: str = "bfloat16", quantization: Quantization | None = None,
             context_tokens: int = CONTEXT_TOKENS) -> MemoryNeed:
        width = _DTYPE_BYTES[dtype]
        per_linear = _QUANT_BYTES[quantization] if quantization else width
        weights = int(self.linear_params * per_linear + self.other_params * width)
        working = self.kv_values_per_token * width * context_tokens + WORKING_ALLOWANCE
        return MemoryNeed(self.params, weights, working, dtype, quantization)


@dataclass(frozen=True)
class MemoryNeed:
    params: int
    weight_bytes: int
    working_bytes: int
    dtype: str
    quantization: Quantization | None

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.working_bytes

    def describe(self) -> str:
        how = self.quantization.replace("bit", "-bit") if self.quantization else self.dtype
        return (f"{self.params / 1e9:.1f}B parameters: {gib(self.weight_bytes)} of weights in "
                f"{how} + {gib(self.working_bytes)} to run = {gib(self.total_bytes)}")


@dataclass(frozen=True)
class Machine:
    """Memory this machine offers, in bytes: each CUDA GPU's, CPU memory, free disk."""

    gpus: tuple[int, ...] = ()
    ram: int = 0
    disk: int = 0
    gpu_names: tuple[str, ...] = ()
    offload_folder: str = ""

    def describe(self) -> list[str]:
        lines = [f"GPU {i} ({name}): {gib(mem)} free" for i, (mem, name) in
                 enumerate(zip(self.gpus, self.gpu_names or ("GPU",) * len(self.gpus),
                               strict=True))]
        lines.append(f"CPU memory: {gib(self.ram)} available" if self.ram else
                     "CPU memory: unknown")
        lines.append(f"Free disk for offload ({self.offload_folder or 'offload folder'}): "
                     f"{gib(self.disk)}")
        return lines or ["no GPU"]


@dataclass(frozen=True)
class Proposal:
    """The placement that fits: what it is called, how to load it, and its trade-off."""

    kind: str
    placement: ModelPlacement
    device: str
    need: MemoryNeed
    trade_off: str
    fits: bool = True

    def cli_flags(self) -> str:
        p = self.placement
        flags = [] if self.device == "auto" else [f"--device {self.device}"]
        if p.device_map is not None:
            flags.append(f"--device-map {p.device_map}")
        if p.max_memory:
            flags.append("--max-memory " + ",".join(f"{k}={v}" for k, v in p.max_memory.items()))
        if p.offload_folder:
            flags.append(f"--offload-folder {p.offload_folder}")
        if p.quantization:
            flags.append(f"--load-in-{p.quantization}")
        return " ".join(flags) or "(no options: the default)"


def gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def _size_arg(n: float) -> str:
    return f"{max(1, int(n // GiB))}GiB"


def plan_config(name: str, trust_remote_code: bool = False) -> Any:
    """The config of a model id or folder (only config.json is fetched from the Hub)."""
    from tam_engine.inference.loading import load_config

    return load_config(name, trust_remote_code)


def model_size(config: Any, name: str = "") -> ModelSize:
    """Count a model's parameters from its config, on the meta device (nothing allocated)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForImageTextToText

    from tam_engine.core.errors import ModelLoadError

    try:
        with init_empty_weights():
            model = AutoModelForImageTextToText.from_config(config)
    except (ValueError, TypeError, ImportError, AttributeError) as exc:
        raise ModelLoadError(f"Cannot build {name or 'the model'} from its config to plan it: "
                             f"{exc}", "The plan needs a model transformers can build.") from exc
    model.tie_weights()  # from_config leaves tied embeddings as two tensors on the meta device
    head = model.get_output_embeddings()
    seen: set[int] = set()
    linear = other = 0
    for module in model.modules():
        for pname, param in module._parameters.items():
            if param is None or id(param) in seen:
                continue
            seen.add(id(param))
            quantisable = (isinstance(module, torch.nn.Linear) and module is not head
                           and pname == "weight")
            if quantisable:
                linear += param.numel()
            else:
                other += param.numel()
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = int(getattr(text, "num_attention_heads", 1) or 1)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    kv = 2 * int(text.num_hidden_layers) * kv_heads * int(head_dim)
    return ModelSize(name or getattr(config, "_name_or_path", "") or "model", linear, other, kv)


def default_offload_folder() -> str:
    import platformdirs

    return str(platformdirs.user_cache_path("tam-desktop") / "offload")


def this_machine(offload_folder: str | None = None) -> Machine:
    """What this machine offers now: each CUDA GPU's free memory, available CPU memory, and
    free disk where the offload folder is (or would be)."""
    import torch

    gpus: list[int] = []
    names: list[str] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, _total = torch.cuda.mem_get_info(i)
            gpus.append(int(free))
            names.append(torch.cuda.get_device_name(i))
    folder = offload_folder or default_offload_folder()
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return Machine(tuple(gpus), available_ram(), shutil.disk_usage(probe).free, tuple(names),
                   folder)


def available_ram() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil is optional: Linux and macOS answer through sysconf
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 0


_TRADE_OFFS = {
    "one GPU": "fastest; exact weights.",
    "split": "exact weights; the layers run on one GPU after another, so about as fast as one "
             "GPU, with their memory pooled.",
    "8bit": "about half the memory of 16-bit; slower per token (LLM.int8) and the weights are "
            "approximated, so maps are close to but not identical with 16-bit ones (lm_head "
            "stays exact).",
    "4bit": "about a quarter of the memory of 16-bit; the weights are approximated (NF4), so maps "
            "can differ slightly from 16-bit ones (lm_head stays exact).",
    "cpu offload": "exact weights, but the layers kept in CPU memory cross to the GPU at every "
                   "token: several times slower.",
    "cpu": "exact weights on the CPU: slow for a large model, but no GPU needed.",
    "disk": "exact weights read from disk at every token: very slow (minutes per answer for a "
            "large model); use it only when nothing else fits.",
    "none": "the model does not fit even with disk offload: free disk space or choose a "
            "smaller model.",
}


def propose(size: ModelSize, machine: Machine, dtype: str = "bfloat16",
            quantization_available: bool = True, offload_folder: str | None = None) -> Proposal:
    """The placement a person would choose for ``size`` on ``machine`` (see the module's text).

    ``dtype`` is the 16/32-bit dtype the weights compute in; ``quantization_available`` says
    whether 4/8-bit loading may be proposed (bitsandbytes on a CUDA GPU)."""
    gpus = [int(g * GPU_SHARE) for g in machine.gpus]
    folder = offload_folder or machine.offload_folder or default_offload_folder()
    levels: list[Quantization | None] = [None]
    if gpus and quantization_available:
        levels += ["8bit", "4bit"]
    for level in levels:
        need = size.need(dtype, level)
        key = level or "one GPU"
        best = max(range(len(gpus)), key=lambda i: gpus[i]) if gpus else None
        if best is not None and need.total_bytes <= gpus[best]:
            what = f"{level.replace('bit', '-bit')} on one GPU" if level else "one GPU"
            device = "cuda" if best == 0 else f"cuda:{best}"
            return Proposal(what, ModelPlacement(quantization=level), device, need,
                            _TRADE_OFFS[key])
        # Each further GPU keeps its own share of activations and a CUDA context.
        if len(gpus) > 1 and need.total_bytes + (len(gpus) - 1) * WORKING_ALLOWANCE <= sum(gpus):
            limits: dict[int | str, str] = {i: _size_arg(g) for i, g in enumerate(gpus)}
            what = f"split over {len(gpus)} GPUs" + (
                f", {level.replace('bit', '-bit')}" if level else "")
            return Proposal(what, ModelPlacement("auto", limits, quantization=level), "auto",
                            need, _TRADE_OFFS[level or "split"])
    need = size.need(dtype)
    ram = int(machine.ram * RAM_SHARE)
    if not gpus and need.total_bytes <= ram:
        return Proposal("CPU", ModelPlacement(), "cpu", need, _TRADE_OFFS["cpu"])
    limits = {i: _size_arg(g) for i, g in enumerate(gpus)}
    if gpus and need.total_bytes <= sum(gpus) + ram:
        limits["cpu"] = _size_arg(ram)
        return Proposal("GPU + CPU offload", ModelPlacement("auto", limits), "auto", need,
                        _TRADE_OFFS["cpu offload"])
    if need.weight_bytes <= sum(gpus) + ram + machine.disk:
        limits["cpu"] = _size_arg(ram)
        return Proposal("disk offload", ModelPlacement("auto", limits, folder), "auto", need,
                        _TRADE_OFFS["disk"])
    return Proposal("does not fit", ModelPlacement(), "auto", need, _TRADE_OFFS["none"],
                    fits=False)
