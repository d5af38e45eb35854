"""The batch gallery: filter, sort, thumbnails from a worker, open an item and come back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from tam_engine.batch.browse import word_evidence
from tam_engine.batch.index import read_index
from tam_engine.batch.items import BatchItem, collect_items
from tam_engine.batch.runner import run_batch
from tam_engine.media.io import load_media
from tam_engine.testing.synthetic import synthetic_explanation

# Answers of different lengths: "a red circle", "a red circle and a blue square", ...
LENGTHS = {"a.png": 3, "b.png": 7, "c.png": 0, "d.png": 9, "e.png": 5}


def _explain(item: BatchItem):
    load_media(list(item.media))
    seed = sorted(LENGTHS).index(item.id)
    return synthetic_explanation(n_answer=LENGTHS[item.id], seed=seed)


@pytest.fixture
def batch(tmp_path) -> Path:
    src = tmp_path / "imgs"
    src.mkdir()
    for i, name in enumerate(LENGTHS):
        if LENGTHS[name]:
            rng = np.random.default_rng(i)
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(src / name)
        else:
            (src / name).write_bytes(b"broken")
    out = tmp_path / "batch"
    run_batch(collect_items(str(src)), _explain, out, progress=False)
    return out


@pytest.fixture
def gallery(qtbot, no_gui_leaks, batch):
    from tam_desktop.gallery.view import GalleryWidget

    w = GalleryWidget()
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    w.set_batch(batch, read_index(batch))
    yield w
    qtbot.waitUntil(lambda: not w.model.busy, timeout=20_000)


def _ids(w) -> list[str]:
    return [w.model.record(r)["id"] for r in range(w.model.rowCount())]


def test_filter_by_word_and_status(gallery):
    assert _ids(gallery) == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    gallery.filter_edit.setText("Square")
    assert _ids(gallery) == ["b.png", "d.png"]
    assert gallery.count_label.text() == "2 of 5"
    gallery.filter_edit.clear()
    gallery.status_box.setCurrentIndex(gallery.status_box.findData("error"))
    assert _ids(gallery) == ["c.png"]
    assert gallery.model.data(gallery.model.index(0)).startswith("failed")


def test_sort_by_the_evidence_of_a_word_keeps_the_selection(gallery):
    gallery.view.setCurrentIndex(gallery.model.index(3))  # d.png
    gallery.sort_box.setCurrentIndex(gallery.sort_box.findData("evidence"))
    gallery.word_edit.setText("blue")
    recs = {r["id"]: r for r in gallery.model.records}
    with_blue = sorted((i for i in recs if word_evidence(recs[i], "blue") is not None),
                       key=lambda i: -word_evidence(recs[i], "blue"))
    assert with_blue and _ids(gallery) == with_blue + [
        i for i in ["a.png", "b.png", "c.png", "d.png", "e.png"] if i not in with_blue]
    assert gallery.model.record(gallery.view.currentIndex().row())["id"] == "d.png"
    gallery.sort_box.setCurrentIndex(gallery.sort_box.findData("status"))
    assert _ids(gallery)[0] == "c.png"


def test_thumbnails_come_from_a_worker_and_are_cached_on_disk(gallery, qtbot, batch):
    model = gallery.model
    assert model.data(model.index(0), Qt.ItemDataRole.DecorationRole).isNull()  # asked for
    qtbot.waitUntil(lambda: model.has_thumbnail(0), timeout=20_000)
    pm = model.data(model.index(0), Qt.ItemDataRole.DecorationRole)
    assert pm.width() == 160
    assert list((batch / ".thumbnails").glob("*.png"))


def test_enter_opens_the_item_and_escape_comes_back(main_window, qtbot, batch):
    host = main_window.gallery
    host.open_folder(batch)
    qtbot.waitUntil(lambda: host.showing_gallery, timeout=20_000)
    view = host.gallery.view
    view.setCurrentIndex(host.gallery.model.index(3))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert not host.showing_gallery
    qtbot.waitUntil(lambda: main_window.state.explanation is not None, timeout=20_000)
    assert main_window.current_file.endswith(read_index(batch)[3]["file"].split("/")[-1])
    assert main_window.state.explanation.n_answer == LENGTHS["d.png"]
    main_window.act_cancel.trigger()  # Escape
    assert host.showing_gallery
    assert view.currentIndex().row() == 3
    main_window.act_cancel.trigger()  # in the gallery already: nothing to go back to
    assert host.showing_gallery
    qtbot.waitUntil(lambda: not host.gallery.model.busy, timeout=20_000)


def test_file_menu_has_open_batch(main_window):
    titles = [a.text() for m in main_window.menuBar().actions() if m.text() == "&File"
              for a in m.menu().actions()]
    assert "Open &Batch…" in titles


