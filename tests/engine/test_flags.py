"""The "little visual evidence" flag (tam_engine.core.flags) on constructed token maps, its JSON
export, and token-for-token alignment of two explanations of one given answer."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.compare.alignment import align_words
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.flags import FLAG_FRACTION, FLAG_LABEL, evidence_flags
from tam_engine.core.spans import VisionGrid
from tam_engine.core.token_maps import TokenMaps
from tam_engine.core.words import can_name_object

# "A red circle and a giraffe." + end of turn; " gir" + "affe" is one word of two tokens.
TEXTS = ["A", " red", " circle", " and", " a", " gir", "affe", ".", "<|im_end|>"]
# Each token's visual strength (the mean of its map), as the maps below make it.
STRENGTH = [0.05, 0.40, 0.50, 0.01, 0.02, 0.00, 0.004, 0.00, 0.00]
SPECIAL = np.array([False] * 8 + [True])


def token_maps(strength, texts=TEXTS, n_vision: int = 12) -> TokenMaps:
    """Token maps whose final maps are flat at ``strength`` (so their means are exactly it,
    up to the uint8 step)."""
    n = len(texts)
    maps = np.repeat(np.round(np.asarray(strength) * 255.0).astype(np.uint8)[:, None],
                     n_vision, axis=1)
    z = np.zeros((n, n_vision), np.float32)
    return TokenMaps(kind="answer", token_ids=np.arange(n, dtype=np.int64) + 100,
                     positions=np.arange(20, 20 + n), texts=list(texts), maps=maps,
                     alpha=np.zeros(n, np.float32), relevance=np.zeros((n, 2 + n), np.float32),
                     context=np.zeros((n, 2 + n), bool), norm_lo=np.zeros(n, np.float32),
                     norm_hi=np.ones(n, np.float32), raw=z, eci=z, filtered=z)


def test_object_words_are_those_that_can_name_something():
    assert all(can_name_object(w) for w in ("red", "circle", "giraffe", "two", "running"))
    assert not any(can_name_object(w) for w in ("a", "and", "the", "of", "is", "on", "it",
                                                ".", ""))


def test_a_word_far_below_the_answers_object_words_is_flagged():
    flags = evidence_flags(token_maps(STRENGTH), SPECIAL)
    words = {w.word.key: w for w in flags.words}
    # Function words, punctuation and the special token are no object words, however low.
    assert list(words) == ["red", "circle", "giraffe"]
    assert words["giraffe"].tokens == (5, 6)
    # A word's score is the mean over its tokens; the reference is the median object word.
    assert words["giraffe"].score == pytest.approx(0.002, abs=0.0005)
    assert flags.reference == pytest.approx(0.40, abs=0.005)
    assert flags.threshold == pytest.approx(FLAG_FRACTION * flags.reference)
    assert 0.01 <= FLAG_FRACTION < 1.0   # giraffe is below any such fraction of 0.40, red not
    assert [w.word.key for w in flags.words if w.flagged] == ["giraffe"]
    assert flags.flagged.tolist() == [False] * 5 + [True, True] + [False] * 2
    note = flags.note(6)
    assert note is not None and note.startswith(FLAG_LABEL) and "giraffe" in note
    assert flags.note(1) is None and flags.note(0) is None


def test_the_rule_is_relative_so_it_does_not_depend_on_the_models_brightness():
    dim = evidence_flags(token_maps(np.asarray(STRENGTH) * 0.5), SPECIAL)
    bright = evidence_flags(token_maps(np.minimum(np.asarray(STRENGTH) * 1.8, 1.0)), SPECIAL)
    assert dim.flagged.tolist() == bright.flagged.tolist()
    # A fraction of 1 flags every object word below the median; 0 flags nothing.
    all_low = evidence_flags(token_maps(STRENGTH), SPECIAL, fraction=1.0)
    assert [w.word.key for w in all_low.words if w.flagged] == ["giraffe"]
    assert not evidence_flags(token_maps(STRENGTH), SPECIAL, fraction=0.0).flagged.any()


def test_too_few_object_words_flag_nothing():
    texts = ["A", " giraffe", "."]
    flags = evidence_flags(token_maps([0.3, 0.0, 0.0], texts), None)
    assert [w.word.key for w in flags.words] == ["giraffe"]
    assert flags.reference is None and not flags.flagged.any() and flags.note(1) is None


def test_a_score_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="shape"):
        evidence_flags(token_maps(STRENGTH), SPECIAL, score=np.zeros(3))


def _explanation(tm: TokenMaps, given: bool) -> Explanation:
    n, n_vis = len(tm), tm.n_vision
    input_len = 1 + n_vis + 2
    tm.positions = np.arange(input_len, input_len + n)
    ids = np.concatenate([np.zeros(input_len, np.int64), tm.token_ids])
    texts = ["<v>"] * input_len + list(tm.texts)
    texts[input_len - 2:input_len] = ["Describe", "."]
    grid = VisionGrid(kind="image", media_index=0, t=1, h=3, w=4,
                      positions=np.arange(1, 1 + n_vis))
    meta: dict = {"model": "m", "prompt": "Describe."}
    if given:
        meta["given_answer"] = {"text": "".join(tm.texts[:-1]), "token_probs": [0.5] * n}
    return Explanation(ids=ids, input_len=input_len, token_texts=texts, grids=[grid],
                       prompt_positions=np.array([input_len - 2, input_len - 1]),
                       answer=tm, prompt=None, candidates=None, options=TamOptions(),
                       media=[], meta=meta, is_special=np.isin(np.arange(len(ids)),
                                                               [len(ids) - 1]))


@pytest.mark.parametrize("given", [False, True])
def test_json_export_carries_each_tokens_score_and_flag(given):
    from tam_engine.export.data import explanation_json

    expl = _explanation(token_maps(STRENGTH), given)
    data = explanation_json(expl)
    flags = evidence_flags(expl.answer, expl.special())
    toks = data["answer_tokens"]
    assert [t["evidence_flag"] for t in toks] == flags.flagged.tolist()
    assert [t["visual_strength"] for t in toks] == pytest.approx(STRENGTH, abs=0.003)
    desc = data["evidence_flag"]
    assert desc["label"] == FLAG_LABEL and desc["fraction"] == FLAG_FRACTION
    assert desc["reference"] == pytest.approx(flags.reference)
    assert desc["flagged_words"] == [w.word.text for w in flags.words if w.flagged]
    assert data["answer_source"] == ("given (teacher forcing)" if given else "generated")


def test_one_given_answer_pairs_tokens_one_to_one():
    a = ["A", " gir", "affe", " and", " a", " red", " circle"]
    # B tokenises "giraffe" another way: its words still align, its tokens cannot.
    b = ["A", " g", "iraffe", " and", " a", " red", " circle"]
    same = align_words(a, a)
    for k in range(len(a)):
        assert same.aligned_tokens("a", [k]) == (k,)
        assert same.word_tokens("a", [k]) == (k,)   # a click keeps its one token
    other = align_words(a, b)
    assert other.n_aligned == 6
    assert other.aligned_tokens("a", [2]) == (1, 2)  # " gir"+"affe" vs " g"+"iraffe": whole word
    assert other.word_tokens("a", [2]) == (1, 2)
    assert other.aligned_tokens("a", [5]) == (5,)


def test_html_page_underlines_the_flagged_words():
    from tam_engine.render.html_page import build_html

    expl = _explanation(token_maps(STRENGTH), given=True)
    page = build_html(expl, image_width=64)
    flagged = [chunk for chunk in page.split('<span class="tok" ')[1:] if "border-bottom" in chunk]
    assert [c.split(">", 1)[1].split("<", 1)[0] for c in flagged] == ["gir", "affe"]
    assert all(f'title="{FLAG_LABEL}' in c for c in flagged)
