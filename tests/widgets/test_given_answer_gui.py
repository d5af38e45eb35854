""""Explain this answer…": the dialog, a given answer run through the worker with a real tiny
model (labelled as given, the given tokens' probabilities shown), the flags in the strip and
the timeline, and compare mode explaining one given answer with both models."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QDialogButtonBox

from tam_desktop.models.text import candidates_line, token_tooltip
from tam_desktop.views.given_answer import GIVEN_ANSWER_NAME, GivenAnswerDialog
from tam_engine.core.flags import evidence_flags
from tam_engine.inference.capture.given import GIVEN_META
from tam_engine.inference.settings import GenerationSettings

GIVEN = "a zebra plays the violin under a purple moon"


@pytest.fixture(scope="module")
def qwen_dir(tiny_model_dir):
    return str(tiny_model_dir("qwen2_vl"))


@pytest.fixture
def answer_typed(monkeypatch):
    """The dialog, shown for real but answered as a user would: ``typed[0]`` is typed in,
    then Explain is pressed (``None``: Cancel). The texts it opened with are recorded."""
    typed: list[str | None] = [GIVEN]
    opened: list[str] = []

    def fake_exec(dialog):
        opened.append(dialog.edit.toPlainText())
        if typed[0] is None:
            dialog.reject()
            return int(QDialog.DialogCode.Rejected)
        dialog.edit.setPlainText(typed[0])
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        return int(dialog.result())

    monkeypatch.setattr(GivenAnswerDialog, "exec", fake_exec)
    return typed, opened


def test_the_dialog_accepts_only_an_answer_that_can_run(qtbot, monkeypatch):
    d = GivenAnswerDialog()
    qtbot.addWidget(d)
    ok = d.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled() and "Type or paste" in d.problem.text()
    d.edit.setPlainText("   \n ")
    assert not ok.isEnabled()
    d.edit.setPlainText("a red circle\nand a blue square.\n")
    assert ok.isEnabled() and d.problem.text() == ""
    assert d.answer() == "a red circle\nand a blue square."   # multi-line, kept as typed
    monkeypatch.setenv("TAM_LIMIT_ANSWER_CHARS", "10")
    d.edit.setPlainText("a red circle")
    assert not ok.isEnabled() and "limit of 10" in d.problem.text()
    d.accept()   # Enter on the disabled button: refused
    assert d.result() != QDialog.DialogCode.Accepted


@pytest.mark.slow
def test_explain_a_given_answer_from_the_run_panel(qtbot, main_window, qwen_dir, sample_media,
                                                  error_boxes, answer_typed):
    typed, opened = answer_typed
    w = main_window
    w.open_paths([str(sample_media["image"])])
    qtbot.waitUntil(lambda: bool(w.media_paths), timeout=30_000)
    w.run_panel.model.setCurrentText(qwen_dir)
    w.settings.generation = GenerationSettings(max_new_tokens=4, device="cpu")
    assert w.run_panel.explain_button.isEnabled()
    w.run_panel.explain_button.click()
    assert w.controller.running and not w.run_panel.explain_button.isEnabled()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=60_000)
    assert not error_boxes
    ex = w.state.explanation
    assert ex is not None
    record = ex.meta[GIVEN_META]
    assert record["text"] == GIVEN
    # The given text, whole (max new tokens does not cut it), then the end of turn.
    assert "".join(ex.answer_texts).startswith(GIVEN) and ex.n_answer > 4
    assert len(record["token_probs"]) == ex.n_answer
    # Labelled as given wherever it is named.
    assert GIVEN_ANSWER_NAME in w.windowTitle()
    assert w.status_label.text().startswith("Done:")
    assert GIVEN_ANSWER_NAME in w.status_label.text()
    # A word the model would not say: its token is not among the candidates, and the
    # tooltip / text map add it with the probability the model gave it.
    missing = [k for k in range(ex.n_answer)
               if int(ex.answer.token_ids[k]) not in ex.candidates.ids[k].tolist()]
    assert missing   # a random tiny model says none of these words on its own
    k = missing[0]
    line = candidates_line(ex, k)
    assert line[-1] == (ex.answer_texts[k], pytest.approx(record["token_probs"][k]), True)
    assert sum(chosen for _, _, chosen in line) == 1
    assert "◀" in token_tooltip(ex, k)
    w.state.set_token(k, "answer")
    assert repr(ex.answer_texts[k]) in w.pane.text_map.toPlainText()
    # The strip and the timeline mark the same flagged tokens as the engine's rule.
    flags = evidence_flags(ex.answer, ex.special())
    strip, timeline = w.pane.answer_strip, w.pane.timeline
    assert strip.canvas.marks == frozenset(np.flatnonzero(flags.flagged).tolist())
    assert timeline.flagged.tolist() == flags.flagged.tolist()
    for k in strip.canvas.marks:
        assert "little visual evidence" in strip._tooltip(k)
    # The dialog opens on the last answer given; Cancel starts nothing.
    typed[0] = None
    w.run_panel.explain_button.click()
    assert opened == ["", GIVEN] and not w.controller.running
    assert w.state.explanation is ex


@pytest.mark.slow
def test_compare_explains_one_given_answer_with_both_models(qtbot, compare_window, qwen_dir,
                                                           sample_media, error_boxes,
                                                           answer_typed):
    w = compare_window(media_paths=[str(sample_media["image"])], model_a=qwen_dir,
                       model_b=qwen_dir, prompt="Describe this image.")
    w.settings.generation = GenerationSettings(max_new_tokens=3, device="cpu")
    w.run_bar.explain_button.click()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    assert not error_boxes
    ea, eb = w.states["a"].explanation, w.states["b"].explanation
    assert ea is not None and eb is not None
    assert ea.meta[GIVEN_META]["text"] == eb.meta[GIVEN_META]["text"] == GIVEN
    assert ea.answer_texts == eb.answer_texts
    al = w.comparison.alignment
    # Every word has its counterpart, and (one tokenizer) every token its own.
    assert al.n_aligned == len(al.words_a) == len(al.words_b)
    for word in al.words_a:
        for k in word.tokens:
            assert al.aligned_tokens("a", [k]) == (k,)
    assert GIVEN_ANSWER_NAME in w.body.headers["a"].text()
    # A click on a token selects that token on both sides.
    k = al.words_a[1].tokens[0]
    w.states["a"].set_token(k, "answer")
    assert w.states["b"].selection == (k,) and w.link.aligned
