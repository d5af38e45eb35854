"""Load a vision-language model and its processor from the Hub or a local folder.

The Hub cache and offline mode are respected, the device and dtype are chosen sensibly, remote
code runs only when asked, and safetensors are required unless pickled ``.bin`` weights are
explicitly allowed. Every failure is a :class:`~tam_engine.core.errors.ModelLoadError` or
:class:`~tam_engine.core.errors.ModelMemoryError` that says what to do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tam_engine.core.errors import ModelLoadError, ModelMemoryError
from tam_engine.inference.adapters import adapter_class_for, supported_family_titles
from tam_engine.inference.adapters.base import Adapter
from tam_engine.inference.model_files import (
    check_config_file,
    check_loading_info,
    check_safetensors_files,
    check_tokenizer,
    check_tokenizer_files,
    config_value_errors,
    invalid_config,
)
from tam_engine.inference.model_placement import (
    ModelPlacement,
    check_checkpoint_quantization,
    check_head,
    input_device,
    placement_kwargs,
)

_TRUE = {"1", "on", "yes", "true"}
# Import names whose pip package is named differently (the rest: the import name, with "-").
_PIP_NAMES = {"PIL": "pillow", "vision": "pillow", "cv2": "opencv-python", "google": "protobuf",
              "sklearn": "scikit-learn", "yaml": "pyyaml", "bs4": "beautifulsoup4",
              "flash_attn": "flash-attn", "qwen_vl_utils": "qwen-vl-utils",
              "Levenshtein": "levenshtein"}
_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
           "half": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}


@dataclass
class LoadedModel:
    """A model ready to explain: the model, its processor and the adapter for its family."""

    model: Any
    processor: Any
    adapter: Adapter
    name: str
    device: Any
    dtype: Any
    placement: ModelPlacement | None = None

    @property
    def family(self) -> str:
        return self.adapter.family


def is_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_device(device: str = "auto") -> Any:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is checked to exist."""
    import torch

    name = (device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"Unknown device {device!r}.",
                             "Use auto, cpu, cuda, cuda:N or mps.") from exc
    if dev.type not in ("cpu", "cuda", "mps", "xpu"):
        # "meta" (and the like) hold no data: a model loaded there cannot run at all.
        raise ModelLoadError(f"The device {device!r} cannot run a model.",
                             "Use auto, cpu, cuda, cuda:N or mps.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("CUDA was requested but no CUDA GPU is available.",
                             "Use --device cpu (or auto).")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                  and torch.backends.mps.is_available()):
        raise ModelLoadError("MPS was requested but is not available on this machine.",
                             "Use --device cpu (or auto).")
    return dev


def resolve_dtype(dtype: str, device: Any) -> Any:
    """``"auto"``: bfloat16 on a CUDA GPU that supports it (else float16), float16 on MPS,
    float32 on CPU."""
    import torch

    name = (dtype or "auto").strip().lower()
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    if name not in _DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}.",
                             "Use auto, float32, bfloat16 or float16.")
    return getattr(torch, _DTYPES[name])


def _looks_local(name: str) -> bool:
    return (name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1)
            or Path(name).expanduser().exists())


def _check_local_folder(path: Path, allow_pickle: bool) -> None:
    if not path.exists():
        raise ModelLoadError(f"The folder {path} does not exist.",
                             "Check the path, or give a Hugging Face model id instead.")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} is not a model folder (it has no config.json).",
                             "Choose the folder that holds config.json and the weights, "
                             "e.g. one written by save_pretrained.")
    has_st = any(path.glob("*.safetensors"))
    has_bin = any(path.glob("*.bin")) or any(path.glob("*.pt"))
    if not has_st and not has_bin:
        raise ModelLoadError(f"{path} has a config but no weights.",
                             "Copy the model's .safetensors files into the folder.")
    if not has_st and not allow_pickle:
        raise ModelLoadError(
            f"{path} has only pickled .bin weights, which can run code when loaded.",
            "Convert them to safetensors, or allow pickles explicitly if you trust the source.")


def load_config(name: str, trust_remote_code: bool = False) -> Any:
    """The model's config, with the Hub/offline/unknown-architecture errors made clear."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except config_value_errors() as exc:  # a value transformers' validators refuse
        raise invalid_config(name, exc) from exc
    except ValueError as exc:
        text = str(exc)
        if "trust_remote_code" in text:
            raise ModelLoadError(
                f"{name} needs its own code from the Hub to load.",
                "Pass --trust-remote-code (trust_remote_code=True) only if you trust its "
                "authors.") from exc
        raise ModelLoadError(
            f"{name} has an architecture this version of transformers does not know.",
            "Upgrade transformers, or choose a supported vision-language model "
            f"({supported_family_titles()}; `tam models` lists them).") from exc
    except OSError as exc:
        if is_offline():
            raise ModelLoadError(
                f"{name} is not in the Hugging Face cache and offline mode is on "
                "(HF_HUB_OFFLINE).",
                "Download it once while online (e.g. `hf download " + name + "`), unset "
                "HF_HUB_OFFLINE, or give a local model folder.") from exc
        raise ModelLoadError(f"Cannot find the model {name}.",
                             "Check the model id or path and your network connection; gated "
                             "models need `hf auth login`.") from exc


def load_model(name_or_path: str | os.PathLike, device: str = "auto", dtype: str = "auto",
               trust_remote_code: bool = False, allow_pickle: bool = False,
               placement: ModelPlacement | None = None) -> LoadedModel:
    """Load a vision-language model, its processor and the adapter for its family.

    Parameters
    ----------
    name_or_path
        A Hugging Face model id (looked up in the cache first; offline mode is honoured) or a
        local folder written by ``save_pretrained``.
    device, dtype
        ``"auto"`` or an explicit choice (``cpu``/``cuda``/``mps``;
        ``float32``/``bfloat16``/``float16``).
    trust_remote_code
        Run the model repository's own Python code. Off unless asked.
    allow_pickle
        Accept pickled ``.bin`` weights when no safetensors exist.
    placement
        Split, offload or quantise the weights (:mod:`~tam_engine.inference.model_placement`);
        ``None`` puts the whole model on ``device``.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    name = os.fspath(name_or_path)
    if _looks_local(name):
        path = Path(name).expanduser()
        _check_local_folder(path, allow_pickle)
        check_config_file(path)
        name = str(path)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    config = load_config(name, trust_remote_code)
    adapter_cls = adapter_class_for(config)
    if adapter_cls is None:
        kind = getattr(config, "model_type", "unknown")
        raise ModelLoadError(
            f"{name} ({kind}) is not a vision-language model this app can explain.",
            f"Choose an image-text-to-text model: {supported_family_titles()} (`tam models` "
            "lists them), or another model with an image token.")
    refusal = adapter_cls.refusal(config)
    if refusal is not None:
        raise refusal
    placement = placement or ModelPlacement()
    check_checkpoint_quantization(config, placement, name)
    if Path(name).is_dir():
        check_tokenizer_files(Path(name))
    try:
        processor = AutoProcessor.from_pretrained(name, trust_remote_code=trust_remote_code)
    except ImportError as exc:
        raise _missing_package(f"the processor of {name}", exc) from exc
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"Cannot load the processor of {name}: {exc}",
                             "The folder or repository must contain the tokenizer and "
                             "image-processor files.") from exc
    check_tokenizer(name, processor)
    if adapter_cls.uses_chat_template and not has_chat_template(processor):
        raise ModelLoadError(
            f"{name} ships no chat template, which its family's adapter ({adapter_cls.title}) "
            "needs to build the prompt.",
            "Use the chat (instruction-tuned) checkpoint of this model, or add its "
            "chat_template.jinja to the model folder.")
    if Path(name).is_dir():
        check_safetensors_files(Path(name))
    try:
        loaded: Any = AutoModelForImageTextToText.from_pretrained(
            name, dtype=torch_dtype, trust_remote_code=trust_remote_code,
            use_safetensors=None if allow_pickle else True, output_loading_info=True,
            **placement_kwargs(placement, dev, torch_dtype))
        model, info = loaded  # output_loading_info: (model, report)
        check_loading_info(name, info)
        if placement.is_single_device:
            model.to(dev)
    except ImportError as exc:
        raise _missing_package(name, exc) from exc
    except (RuntimeError, MemoryError) as exc:
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
            raise ModelMemoryError(
                f"{name} does not fit in the memory of {dev}.",
                "Load it with a smaller dtype (bfloat16/float16), on another device, or "
                "choose a smaller model.") from exc
        raise ModelLoadError(f"Cannot load the weights of {name}: {exc}",
                             "The weight files may be incomplete or corrupt.") from exc
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            ArithmeticError) as exc:  # e.g. a zero hidden size divides by zero
        text = str(exc)
        if "safetensors" in text.lower() and not allow_pickle:
            raise ModelLoadError(
                f"{name} has no safetensors weights.",
                "Use a repository with .safetensors files, or allow pickled weights explicitly "
                "if you trust the source.") from exc
        raise ModelLoadError(f"Cannot load {name}: {text.splitlines()[0] if text else exc}",
                             "Check that it is an image-text-to-text model and its files are "
                             "complete.") from exc
    model.eval()
    check_head(model.get_output_embeddings(), name, config)
    if not placement.is_single_device:
        dev = input_device(model, dev)
    return LoadedModel(model=model, processor=processor, adapter=adapter_cls(processor, model.config),
                       name=name, device=dev, dtype=torch_dtype, placement=placement)


def has_chat_template(processor: Any) -> bool:
    """Whether ``processor.apply_chat_template`` has a template to apply (a string, or a dict
    of named templates with a "default" one), as transformers resolves it."""
    template = getattr(processor, "chat_template", None)
    if isinstance(template, dict):
        return "default" in template
    return isinstance(template, str) and bool(template.strip())


def missing_packages(exc: ImportError) -> list[str]:
    """The pip packages whose absence ``exc`` reports (empty when it does not say).

    A ``ModuleNotFoundError`` names its module; transformers' own messages say
    "pip install NAME", "Package `NAME` is required" or "requires the NAME library".
    """
    text = str(exc)
    said = re.search(r"pip install ((?:[A-Za-z0-9_.\-\[\]]+ ?)+)", text)
    if said:
        return [_pip_name(n) for n in said.group(1).split()]
    name = getattr(exc, "name", None)
    if isinstance(name, str) and name:
        return [_pip_name(name)]
    for pattern in (r"No module named '([\w.]+)'", r"[Pp]ackage `([\w.\-]+)`",
                    r"requires the (\w+) library"):
        found = re.search(pattern, text)
        if found:
            return [_pip_name(found.group(1))]
    return []


def _pip_name(module: str) -> str:
    top = module.strip("`'\"").split(".")[0]
    return _PIP_NAMES.get(top) or top.lower().replace("_", "-")


def _missing_package(what: str, exc: ImportError) -> ModelLoadError:
    packages = missing_packages(exc)
    if not packages:
        return ModelLoadError(f"Loading {what} needs a Python package that is not installed: {exc}",
                              "Install the package the message names, then load the model again.")
    names = " ".join(packages)
    return ModelLoadError(
        f"Loading {what} needs the Python package{'s' if len(packages) > 1 else ''} {names}, "
        "which is not installed.",
        f"Install it with `pip install {names}` in the environment tam runs in, then load the "
        "model again.")
