"""What a user's prompt may hold, checked before the processor sees it.

The processor and the chat template trust their text: a prompt holding a control token's text
(``<|image_pad|>``, ``<|im_end|>``) is tokenized into the model's own markers and breaks the
vision spans with an obscure "Mismatch in image token count", a lone surrogate (invalid UTF-8
on a command line) makes the tokenizer raise, and a 100,000-character prompt needs tens of GiB.
Each is refused here with what to change.
"""

from __future__ import annotations

from typing import Any

from tam_engine.core.errors import TamError
from tam_engine.core.limits import check_count

__all__ = ["PromptError", "check_prompt"]


class PromptError(TamError):
    """The prompt cannot be given to the model as it is."""


def _control_texts(tokenizer: Any) -> list[str]:
    """The texts of the tokenizer's special and added tokens (its markers)."""
    texts = set(getattr(tokenizer, "all_special_tokens", None) or [])
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for tok in added.values():
        if getattr(tok, "special", True):
            texts.add(str(tok))
    # One- or two-character "special" tokens (a lone "<", a space) are ordinary text.
    return sorted((t for t in texts if isinstance(t, str) and len(t) > 2), key=len,
                  reverse=True)


def check_prompt(prompt: str, tokenizer: Any = None) -> str:
    """``prompt`` when it can be given to the model; a :class:`PromptError` (or a
    :class:`~tam_engine.core.limits.LimitError` for its length) otherwise."""
    if not isinstance(prompt, str):
        raise PromptError(f"The prompt must be text, not {type(prompt).__name__}.")
    check_count(len(prompt), "prompt_chars", "The prompt's length in characters")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PromptError("The prompt is not valid text (it holds an unpaired surrogate, e.g. "
                          "from bytes that are not UTF-8).",
                          "Type the prompt again, or save it as UTF-8.") from exc
    if tokenizer is not None:
        found = sorted((prompt.find(t), t) for t in _control_texts(tokenizer) if t in prompt)
        if found:
            names = ", ".join(repr(t) for _, t in found[:5])
            raise PromptError(f"The prompt contains control token text of the model: {names}.",
                              "Remove it: such text is reserved for the model's own markers "
                              "(media placeholders, turns) and would break the run.")
    return prompt
