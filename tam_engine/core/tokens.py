"""How a token's text is shown to people, and which tokens are the tokenizer's special ones.

One rule set for every display (captions, text-map candidates, the HTML page, the comparison
captions, the desktop chips):

- control characters become symbols: newline U+21B5 ``↵``, tab U+21E5 ``⇥``, carriage return
  U+240D, the other C0 controls their Unicode "control pictures" (U+2400 + code), DEL U+2421;
  C1 controls (U+0080-U+009F, never meant to be drawn) become U+FFFD;
- invisible joiners and presentation selectors (ZWSP, ZWNJ, ZWJ, word joiner, VS15, VS16, BOM)
  are dropped: no font draws them and a box for them would be wrong (an emoji ZWJ sequence
  then shows as its parts);
- white space around the token (a byte-level BPE word-start space, say) is stripped; white
  space inside it is kept;
- a token left with nothing to show is ``␣`` (U+2423) when it was white space, ``∅`` when it
  was empty or only invisible characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

# Invisible joiners and presentation selectors.
_INVISIBLE = frozenset({0x200B, 0x200C, 0x200D, 0x2060, 0xFE0E, 0xFE0F, 0xFEFF})
# Control characters tokens do contain, shown as the symbols people know them by.
_VISIBLE_CONTROLS = {"\n": "\u21b5", "\r": "\u240d", "\t": "\u21e5"}
REPLACEMENT = "\ufffd"
SPACE_MARK = "\u2423"
EMPTY_MARK = "\u2205"


def visible(text: str) -> str:
    """``text`` character by character as the rules above draw it (no stripping)."""
    out = []
    for ch in text:
        cp = ord(ch)
        if ch in _VISIBLE_CONTROLS:
            out.append(_VISIBLE_CONTROLS[ch])
        elif cp in _INVISIBLE:
            continue
        elif cp < 0x20:
            out.append(chr(0x2400 + cp))
        elif cp == 0x7F:
            out.append("\u2421")
        elif 0x80 <= cp < 0xA0:
            out.append(REPLACEMENT)
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=65_536)  # views show a long answer's tokens again on every switch
def display_token(text: str) -> str:
    """A token (or a run of tokens) as people see it: ``" dog"`` -> ``"dog"``,
    ``"\\n"`` -> ``"↵"``, ``" "`` -> ``"␣"``, ``""`` -> ``"∅"``."""
    shown = visible(text).strip()
    if shown:
        return shown
    return SPACE_MARK if any(ch.isspace() for ch in text) else EMPTY_MARK


def token_number(k: int) -> int:
    """The number people see for token index ``k``: tokens are counted from 1 on every screen,
    caption, file name and message (index 0 is token 1)."""
    return int(k) + 1


def token_label(k: int, n: int | None = None, kind: str | None = None) -> str:
    """How a token is named everywhere (tooltips, status bar, text map, exports, self-test,
    command line): ``token 3``, ``answer token 3 / 12``, ``prompt token 1``; ``k`` is the
    0-based index, the label counts from 1 (:func:`token_number`)."""
    text = f"{kind} token " if kind else "token "
    text += str(token_number(k))
    return text + (f" / {int(n)}" if n is not None else "")


def phrase_label(tokens: Sequence[int], kind: str | None = None) -> str:
    """How a phrase of several tokens is named: ``answer tokens 3-5`` for a run, ``answer
    tokens 2, 5, 7`` otherwise (counted from 1, as :func:`token_label`)."""
    ks = sorted({int(k) for k in tokens})
    if len(ks) == 1:
        return token_label(ks[0], kind=kind)
    nums = [token_number(k) for k in ks]
    run = nums == list(range(nums[0], nums[-1] + 1))
    shown = f"{nums[0]}-{nums[-1]}" if run else ", ".join(map(str, nums))
    return (f"{kind} tokens " if kind else "tokens ") + shown


def phrase_text(texts: Sequence[str], tokens: Sequence[int]) -> str:
    """A phrase's words as people read them: runs of consecutive tokens joined as generated
    (``" red" " circle"`` -> ``red circle``), separate runs joined by `` … ``."""
    ks = sorted({int(k) for k in tokens})
    runs: list[list[int]] = []
    for k in ks:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return " \u2026 ".join(display_token("".join(texts[k] for k in run)) for run in runs)


# A whole token that looks like a tokenizer's special token: "<|im_end|>", "</s>", "<image>".
_SPECIAL_LOOK = re.compile(r"<\|[^<>|]*\|>|</?[A-Za-z_][A-Za-z0-9_]*>")


def special_from_texts(texts: Sequence[str]) -> np.ndarray:
    """A guessed special-token mask, for when the tokenizer's own is not known (explanations
    saved before the mask was recorded, explanations built by hand).

    Conservative: a token counts only when its *whole* text is a ``<|...|>`` or
    ``<name>``/``</name>`` marker (the look of the special tokens of the model families we
    support, decoded as they are, with the special tokens kept). A marker spread over several
    tokens or inside a longer one is text, and a special token of another look (``[SEP]``)
    is missed rather than some real text taken for one.
    """
    return np.fromiter((_SPECIAL_LOOK.fullmatch(t) is not None for t in texts), dtype=bool,
                       count=len(texts))


def special_mask(mask: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """``mask`` checked against ``texts`` (one entry each), or, when empty (not known), the
    conservative guess from the texts."""
    mask = np.asarray(mask).reshape(-1)
    if mask.size == 0 and texts:
        return special_from_texts(texts)
    if mask.size != len(texts):
        raise ValueError(f"is_special has {mask.size} entries for {len(texts)} tokens")
    return mask.astype(bool, copy=False)
