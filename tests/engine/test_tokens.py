"""Token text for people (one rule set for every display) and the special-token mask guess."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.tokens import display_token, special_from_texts, visible


@pytest.mark.parametrize("text, shown", [
    (" dog", "dog"),                     # a word-start space is not part of the word
    ("dog ", "dog"),
    (" New York", "New York"),           # inner white space stays
    ("\n", "\u21b5"),
    (" cat\n", "cat\u21b5"),
    ("\t", "\u21e5"),
    ("\r\n", "\u240d\u21b5"),
    ("\x00", "\u2400"),
    ("\x1f", "\u241f"),                  # a C0 control that str.isspace() calls white space
    ("\x7f", "\u2421"),
    ("a\x85b", "a\ufffdb"),              # C1 controls are never drawn
    (" ", "\u2423"),
    ("   ", "\u2423"),
    ("\u3000", "\u2423"),                # ideographic space is white space too
    ("", "\u2205"),
    ("\u200d", "\u2205"),                # only invisible characters: nothing to show
    ("\u200d ", "\u2423"),
    ("👩\u200d👩\u200d👧", "👩👩👧"),       # joiners dropped, the parts shown
    ("\u2764\ufe0f", "\u2764"),
    ("猫", "猫"),
    ("<|im_end|>", "<|im_end|>"),
])
def test_display_token_rules(text, shown):
    assert display_token(text) == shown


def test_visible_keeps_spaces_and_only_maps_characters():
    assert visible(" a\tb\u200b ") == " a\u21e5b "
    assert visible("") == ""


def test_every_display_uses_the_one_rule_set():
    import dataclasses

    from tam_engine.compare.comparison import Comparison
    from tam_engine.core.tokens import display_token as gui_display_token
    from tam_engine.render.html_page import build_html
    from tam_engine.render.overlay import token_caption
    from tam_engine.render.textmap import candidate_cells
    from tam_engine.testing.golden import build_explanation

    assert gui_display_token is display_token
    assert token_caption(" \t", 0, 1) == "\u201c\u21e5\u201d  (token 1 / 1)"
    assert token_caption("", 0, 1) == "\u201c\u2205\u201d  (token 1 / 1)"
    assert token_caption("   ", 1, 2, "prompt ") == "prompt \u201c\u2423\u201d  (token 2 / 2)"

    answer = [" A", "\t", "  ", "\u200d", "x\n"]
    expl = build_explanation(answer=answer, seed=3)
    cands = expl.candidates
    texts = [[answer[k]] * cands.k for k in range(len(answer))]
    expl = dataclasses.replace(expl, candidates=dataclasses.replace(cands, texts=texts))
    for k, text in enumerate(answer):
        assert candidate_cells(expl, k)[0].text.rsplit("  ", 1)[0] == display_token(text)

    page = build_html(expl, image_width=32)
    for k, text in enumerate(answer):
        assert f'data-key="a{k}">{display_token(text)}</span>' in page
    assert ' <span class="tok" data-col' in page           # the word-start space stays a gap

    from tam_engine.compare.comparison import _selection_text

    cmp = Comparison.of(expl, expl)
    assert _selection_text(cmp.a, [0, 1]) == display_token(" A\t")
    assert _selection_text(cmp.a, [2]) == "\u2423"


def test_special_tokens_are_guessed_only_from_whole_marker_tokens():
    texts = ["<|im_start|>", "user", "</s>", "<image>", "<pad>", "<IMG_CONTEXT>", " <b",
             "x < y", "<", "|>", " <|im_end|>", "<|im_end|>", "[SEP]", ""]
    mask = special_from_texts(texts)
    assert mask.dtype == bool and mask.shape == (len(texts),)
    assert [t for t, m in zip(texts, mask) if m] == [
        "<|im_start|>", "</s>", "<image>", "<pad>", "<IMG_CONTEXT>", "<|im_end|>"]
    assert special_from_texts([]).shape == (0,)
    assert not np.any(special_from_texts([" the", " cat"]))
