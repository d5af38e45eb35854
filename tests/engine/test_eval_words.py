"""Tokens to words, and word classes, without any tagger or download."""

from __future__ import annotations

import pytest

from tam_engine.core.words import group_words
from tam_engine.eval.datasets import coco_vocabulary
from tam_engine.eval.words import (
    Vocabulary,
    function_class,
    name_forms,
    phrase_head,
    plurals,
)


def _texts(words):
    return [(w.text, w.tokens) for w in words]


def test_tokens_group_into_words_at_spaces_and_punctuation():
    toks = ["A", " man", " hold", "ing", " a", " sur", "f", "board", ",", " smiling", "."]
    assert _texts(group_words(toks)) == [
        ("A", (0,)), ("man", (1,)), ("holding", (2, 3)), ("a", (4,)),
        ("surfboard", (5, 6, 7)), (",", (8,)), ("smiling", (9,)), (".", (10,))]


def test_possessive_ending_is_its_own_word():
    words = group_words([" The", " dog", "'s", " ball"])
    assert [w.text for w in words] == ["The", "dog", "'s", "ball"]
    assert function_class(words, 2) == "possessive"


def test_a_token_after_punctuation_starts_a_word_and_markers_count_as_spaces():
    assert [w.text for w in group_words(["cat", ".", "The", "\u2581dog", "\u0120runs"])] == [
        "cat", ".", "The", "dog", "runs"]
    # Empty pieces (a byte that completes in the next token) belong to no word.
    assert [w.tokens for w in group_words([" caf", "", "\u00e9", " ok"])] == [(0, 1, 2), (3,)]


def test_newlines_and_spaces_only_tokens_break_words():
    assert [w.text for w in group_words(["a", "\n", "b", " ", "c"])] == ["a", "b", "c"]


@pytest.mark.parametrize("word,cls", [
    ("the", "determiner"), ("These", "determiner"), ("they", "pronoun"), ("its", "pronoun"),
    ("and", "conjunction"), ("could", "modal"), ("where", "wh-word"), ("wow", "interjection"),
    ("dog", None), ("red", None), ("on", None),
])
def test_closed_classes(word, cls):
    words = group_words([word])
    assert function_class(words, 0) == cls


def test_existential_there_only_before_a_form_of_be():
    ex = group_words(["There", " are", " two", " dogs"])
    loc = group_words(["A", " dog", " sits", " there", "."])
    assert function_class(ex, 0) == "existential-there"
    assert function_class(loc, 3) is None


def test_plurals():
    assert plurals("dog") == ["dogs"]
    assert plurals("bus") == ["buses", "busses"]
    assert plurals("box") == ["boxes"]
    assert plurals("sandwich") == ["sandwiches"]
    assert plurals("puppy") == ["puppies"]
    assert plurals("knife") == ["knives"]
    assert plurals("person") == ["people", "persons"]
    assert name_forms("teddy bear") == [("teddy", "bear"), ("teddy", "bears")]


def test_vocabulary_matches_synonyms_plurals_and_longest_names():
    vocab = coco_vocabulary(["person", "dog", "teddy bear", "bear", "hot dog"])
    text = "Two women , a puppy , a teddy bear , bears and hot dogs"
    words = group_words([" " + t for t in text.split(" ")])
    hits = [(words[m.start].text, m.end - m.start, m.category) for m in vocab.match(words)]
    assert hits == [("women", 1, "person"), ("puppy", 1, "dog"), ("teddy", 2, "teddy bear"),
                    ("bears", 1, "bear"), ("hot", 2, "hot dog")]


def test_vocabulary_first_category_keeps_a_shared_name():
    v = Vocabulary({"red circle": ["circle"], "blue circle": ["circle"]})
    words = group_words(["a", " circle"])
    assert [m.category for m in v.match(words)] == ["red circle"]


def test_own_names_win_over_other_categories_synonyms():
    v = Vocabulary({"man": ["woman", "person"], "woman": ["man", "person"]})
    words = group_words([" woman", " man", " person"])
    assert [m.category for m in v.match(words)] == ["woman", "man", "man"]


@pytest.mark.parametrize("phrase,head", [
    ("a man in a red shirt", "man"), ("The two white dogs", "dog"), ("grass", "grass"),
    ("three women", "woman"), ("the buses", "bus"), ("knives", "knife"), ("puppies", "puppy"),
    ("a woman holding an umbrella", "woman"), ("the top of the table", "top"),
])
def test_phrase_heads(phrase, head):
    assert phrase_head(phrase) == head
