"""Checks of a model's files and of what loading them reported, so that a broken model is
refused with a message instead of running with random weights or failing obscurely later.

Kept apart from :mod:`~tam_engine.inference.loading` (which calls them): each check is one small
function of the files or of the loader's report.

- ``config.json`` that is not a JSON object is named as such (transformers reports it as a
  missing model, and offline as "not in the cache");
- a ``.safetensors`` file that is empty, truncated or whose header is corrupt is named before
  transformers meets it (it raises deep inside with no file name);
- a load that reports missing or mismatched weights (half the tensors, ``lm_head`` gone: those
  would be initialised at random and the model would still "run") is refused;
- a processor without a tokenizer is refused (the run would fail with "Mismatch in image token
  count").
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from tam_engine.core.errors import ModelLoadError

__all__ = ["check_config_file", "check_loading_info", "check_safetensors_files",
           "check_tokenizer", "check_tokenizer_files", "config_value_errors", "invalid_config"]

#: Files of which a model folder holds at least one when it has a tokenizer.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model",
                    "tokenizer_config.json", "vocab.txt")

_HEADER_MAX = 100 * 2**20  # safetensors' own bound on a header


def check_config_file(folder: Path) -> None:
    """``folder/config.json`` must be a JSON object with a ``model_type`` text."""
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelLoadError(f"{path} is not a valid JSON file ({type(exc).__name__}: {exc}).",
                             "Restore the model's config.json (download or copy it again)."
                             ) from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} does not hold a model configuration.",
                             "Restore the model's config.json (download or copy it again).")
    if not isinstance(data.get("model_type"), str):
        raise ModelLoadError(f"{path} does not say what kind of model it is (no model_type).",
                             "Restore the model's config.json (download or copy it again).")


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size < 8:
        return "empty" if size == 0 else "truncated"
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > min(_HEADER_MAX, size - 8):
            return "corrupt (its header length is impossible)"
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "corrupt (its header is not readable)"
    if not isinstance(header, dict):
        return "corrupt (its header is not a table of tensors)"
    data = size - 8 - n
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            return f"corrupt (the entry of {key} is malformed)"
        if offsets[1] > data:
            return f"truncated (the tensor {key} ends after the end of the file)"
    return None


def check_safetensors_files(folder: Path) -> None:
    """Every ``*.safetensors`` file in ``folder`` has a sound header and all its data."""
    for path in sorted(folder.glob("*.safetensors")):
        problem = _safetensors_problem(path)
        if problem is not None:
            raise ModelLoadError(f"The weight file {path} is {problem}.",
                                 "Download or copy the model's weights again.")


def check_loading_info(name: str, info: dict[str, Any]) -> None:
    """Refuse a load whose weights did not all come from the files (transformers would have
    initialised the rest at random)."""
    missing = sorted(info.get("missing_keys") or ())
    mismatched = [str(m[0]) if isinstance(m, (tuple, list)) else str(m)
                  for m in (info.get("mismatched_keys") or ())]
    if not missing and not mismatched:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} weight(s) missing from the files (e.g. "
                     f"{', '.join(missing[:3])})")
    if mismatched:
        parts.append(f"{len(mismatched)} of the wrong shape (e.g. {', '.join(mismatched[:3])})")
    raise ModelLoadError(f"The weights of {name} do not match its configuration: "
                         f"{'; '.join(parts)}. It would run with random weights.",
                         "Download or copy the complete weights again, or check that "
                         "config.json belongs to these weights.")


def check_tokenizer(name: str, processor: Any) -> None:
    """The processor must hold a tokenizer (a folder without tokenizer files loads an image
    processor alone)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer is None or not callable(getattr(tokenizer, "convert_tokens_to_ids", None)):
        raise ModelLoadError(f"{name} has no tokenizer.",
                             "Copy the model's tokenizer files (tokenizer.json, "
                             "tokenizer_config.json) into the folder.")


def check_tokenizer_files(folder: Path) -> None:
    """A local model folder must hold its tokenizer's files: without them transformers may
    still build a processor, whose run fails with an obscure "Mismatch in image token count"."""
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(f"{folder} has no tokenizer files, so its processor cannot be "
                             "loaded.",
                             "Copy the model's tokenizer and processor files (tokenizer.json, "
                             "tokenizer_config.json, processor_config.json) into the folder.")


def config_value_errors() -> tuple[type[BaseException], ...]:
    """What transformers raises for a config.json whose values it refuses (e.g. a negative
    layer count), besides ``ValueError``."""
    try:
        from huggingface_hub.errors import StrictDataclassError
    except ImportError:  # an older huggingface_hub: its validators raise ValueError
        return (TypeError,)
    return (StrictDataclassError, TypeError)


def invalid_config(name: str, exc: BaseException) -> ModelLoadError:
    first = str(exc).strip().splitlines()
    return ModelLoadError(f"The configuration of {name} is invalid: "
                          f"{' '.join(line.strip() for line in first[:3])}",
                          "Restore the model's config.json (download or copy it again).")
