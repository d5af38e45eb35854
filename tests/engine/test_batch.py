"""``tam explain`` over many items: folder, glob and manifest inputs; failures recorded;
resume after a kill (the killed item redone, the finished ones not)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tam_engine.batch.index import read_index
from tam_engine.batch.items import BatchInputError, collect_items, is_batch_source, item_file_name
from tam_engine.batch.runner import run_batch
from tam_engine.cli import main
from tam_engine.core.explanation import Explanation
from tam_engine.eval.runner import clean_caption

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from batch_fake import fake_explain  # noqa: E402


def _png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    for i, name in enumerate(["a.png", "b.png", "d.png", "sub/e.png"]):
        _png(d / name, i)
    (d / "c.png").write_bytes(b"this is not an image")  # broken, in the middle
    (d / "notes.txt").write_text("not media")
    return d


def test_sources_are_recognised(folder, tmp_path):
    assert is_batch_source([str(folder)])
    assert is_batch_source([str(folder / "*.png")])
    assert is_batch_source([str(tmp_path / "m.jsonl")]) and is_batch_source(["x.csv"])
    assert not is_batch_source([str(folder / "a.png")])
    assert not is_batch_source([str(folder / "a.png"), str(folder / "b.png")])


def test_folder_with_a_broken_file_completes_and_records_it(folder, tmp_path, tiny_model_dir,
                                                             capsys):
    out = tmp_path / "out"
    code = main(["explain", str(folder), "--model", str(tiny_model_dir("qwen2_vl")),
                 "--out", str(out), "--max-new-tokens", "2", "--device", "cpu",
                 "--no-progress"])
    assert code == 0
    recs = read_index(out)
    assert [r["id"] for r in recs] == ["a.png", "b.png", "c.png", "d.png", "sub/e.png"]
    assert [r["status"] for r in recs] == ["ok", "ok", "error", "ok", "ok"]
    assert "c.png" in recs[2]["error"] and recs[2]["file"] is None
    for r in recs[:2] + recs[3:]:
        expl = Explanation.load(out / r["file"])
        assert r["tokens"] == expl.answer.texts
        assert r["answer"] == clean_caption(expl.answer.texts, expl.special())
        assert r["visual_evidence"] == pytest.approx(expl.answer.visual_strength(), abs=1e-4)
        assert expl.meta["prompt"] == r["prompt"] == "Describe this image."
        assert expl.meta["item"] == r["id"]
        assert r["seconds"]["total"] > 0
    assert json.loads((out / "batch.json").read_text())["n_errors"] == 1
    assert "4 of 5 item(s) explained, 1 failed" in capsys.readouterr().err


def test_glob_and_manifests(folder, tmp_path):
    items = collect_items(str(folder / "[ab].png"), "Hi")
    assert [(it.id, it.prompt) for it in items] == [("a.png", "Hi"), ("b.png", "Hi")]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        json.dumps({"id": "two", "media": ["imgs/a.png", "imgs/b.png"], "prompt": "Same?"})
        + "\n\n" + json.dumps({"media": "imgs/d.png", "answer": "A cat."}) + "\n")
    items = collect_items(str(jsonl), "Default?")
    assert items[0].media == (str(tmp_path / "imgs/a.png"), str(tmp_path / "imgs/b.png"))
    assert (items[0].id, items[0].prompt, items[0].answer) == ("two", "Same?", None)
    assert (items[1].id, items[1].prompt, items[1].answer) == ("imgs/d.png", "Default?",
                                                                "A cat.")
    csv = tmp_path / "m.csv"
    csv.write_text("id,media,prompt\nx,imgs/a.png|imgs/b.png,\"Left, or right?\"\ny,imgs/d.png,\n")
    items = collect_items(str(csv))
    assert [len(it.media) for it in items] == [2, 1]
    assert [it.prompt for it in items] == ["Left, or right?", "Describe this image."]


@pytest.mark.parametrize("text, message", [
    ('{"image": "a.png"}\n', "unknown field(s) image"),
    ('{"media": []}\n', "no media"),
    ('{"id": "x", "media": "a.png"}\n{"id": "x", "media": "b.png"}\n', "two items have the id"),
    ("not json\n", "not JSON"),
])
def test_bad_manifests_are_refused(tmp_path, text, message):
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    with pytest.raises(BatchInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        collect_items(str(path))


def test_a_given_answer_is_explained_as_given(tmp_path, tiny_model_dir, tiny_loaded):
    """A manifest's answer is explained by teacher forcing: the item's explanation holds exactly
    the given tokens (and the probabilities the model gave them), not a generated answer."""
    from tam_engine.core.media import MediaItem
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings

    _png(tmp_path / "a.png", 0)
    # What the tiny random model itself says, then a different answer of the same words reversed.
    frames = np.asarray(Image.open(tmp_path / "a.png"))
    own = run_and_explain(tiny_loaded("qwen2_vl"), [MediaItem("image", "a.png", frames)],
                          "Describe this image.", GenerationSettings(max_new_tokens=3))
    given = "".join(reversed(own.answer_texts))
    (tmp_path / "m.jsonl").write_text(json.dumps({"media": "a.png", "answer": given}) + "\n")
    out = tmp_path / "out"
    assert main(["explain", str(tmp_path / "m.jsonl"), "--model",
                 str(tiny_model_dir("qwen2_vl")), "--out", str(out), "--device", "cpu",
                 "--no-progress"]) == 0
    (rec,) = read_index(out)
    assert rec["status"] == "ok" and rec["given_answer"] == given and rec["notes"] == []
    expl = Explanation.load(out / rec["file"])
    record = expl.meta["given_answer"]
    assert record["text"] == given and "".join(expl.answer_texts).startswith(given)
    assert len(record["token_probs"]) == expl.n_answer


def test_item_file_names_are_safe_and_distinct():
    names = {item_file_name(i) for i in ["a/b.png", "a_b.png", "a b.png", "../x", ""]}
    assert len(names) == 5
    assert all("/" not in n and not n.startswith(".") for n in names)


def test_resume_after_a_kill_redoes_only_the_killed_item(folder, tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "stalled"
    proc = subprocess.Popen([sys.executable, str(FIXTURES / "batch_fake.py"), str(folder),
                             str(out), "d.png", str(marker)])
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert proc.poll() is None, "the batch ended before reaching the stalled item"
            assert time.monotonic() < deadline, "the batch never reached the stalled item"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    partial = [json.loads(x)["id"] for x in
               (out / "index.jsonl.rank0.jsonl").read_text().splitlines()]
    assert partial == ["a.png", "b.png", "c.png"]
    assert not (out / "index.jsonl").exists()
    # As if the kill had also torn a save: a temporary file of the killed item.
    torn = out / "items" / f".{item_file_name('d.png')}.x1y2.part"
    torn.write_bytes(b"PK\x03\x04 half")
    before = {p.name: p.stat().st_mtime_ns for p in (out / "items").iterdir()}

    explained: list[str] = []

    def counting(item):
        explained.append(item.id)
        return fake_explain(item)

    summary = run_batch(collect_items(str(folder)), counting, out, progress=False)
    assert explained == ["d.png", "sub/e.png"]
    assert summary is not None and (summary.n_ok, summary.n_errors) == (4, 1)
    assert not torn.exists()
    after = {p.name: p.stat().st_mtime_ns for p in (out / "items").iterdir()}
    assert all(after[n] == t for n, t in before.items() if not n.startswith("."))
    assert [r["id"] for r in read_index(out)] == ["a.png", "b.png", "c.png", "d.png",
                                                  "sub/e.png"]
    # A finished batch run again explains nothing; --retry-errors runs the failure again.
    explained.clear()
    run_batch(collect_items(str(folder)), counting, out, progress=False)
    assert explained == []
    run_batch(collect_items(str(folder)), counting, out, progress=False, retry_errors=True)
    assert explained == ["c.png"]


def test_an_item_saved_but_not_recorded_is_redone(folder, tmp_path):
    out = tmp_path / "out"
    items = collect_items(str(folder))
    run_batch(items, fake_explain, out, progress=False)
    rank0 = out / "index.jsonl.rank0.jsonl"
    lines = rank0.read_text().splitlines(keepends=True)
    rank0.write_text("".join(lines[:-1]) + lines[-1][:20])  # torn last record
    (out / "index.jsonl").unlink()
    explained: list[str] = []
    run_batch(items, lambda it: explained.append(it.id) or fake_explain(it), out,
              progress=False)
    assert explained == ["sub/e.png"]


def test_a_resume_with_other_settings_is_refused(folder, tmp_path):
    from tam_engine.eval.runner import ResumeMismatchError

    items = collect_items(str(folder / "a.png").replace("a.png", "[a].png"))
    run_batch(items, fake_explain, tmp_path / "o", config={"model": "m1"}, progress=False)
    with pytest.raises(ResumeMismatchError, match="model"):
        run_batch(items, fake_explain, tmp_path / "o", config={"model": "m2"}, progress=False)


def test_arrange_filters_and_sorts_records():
    from tam_engine.batch.browse import arrange, word_evidence

    def rec(answer, words, status="ok", top=0):
        return {"answer": answer, "status": status, "top_word": top if words else None,
                "words": [{"text": t, "tokens": [i], "evidence": e}
                          for i, (t, e) in enumerate(words)]}

    recs = [rec("A dog.", [("A", .9), ("dog.", .2)], top=1),
            rec("Two Dogs", [("Two", .1), ("Dogs", .7)], top=1),
            rec(None, [], status="error"),
            rec("a cat", [("a", .5), ("cat", .6)], top=1)]
    assert word_evidence(recs[0], "DOG") == .2 and word_evidence(recs[1], "dog") is None
    assert arrange(recs, text="dog") == [0]
    assert arrange(recs, status="error") == [2]
    assert arrange(recs, sort="evidence", word="a") == [0, 3, 1, 2]
    assert arrange(recs, sort="evidence") == [1, 3, 0, 2]  # strongest content word
    assert arrange(recs, sort="evidence", descending=False) == [0, 3, 1, 2]
    assert arrange(recs, sort="answer") == [2, 3, 0, 1]
    assert arrange(recs, sort="status") == [2, 0, 1, 3]
    with pytest.raises(ValueError):
        arrange(recs, sort="size")


def test_thumbnail_shows_the_top_word_and_is_cached(tmp_path):
    from tam_engine.batch.thumbnails import cached_thumbnail, render_thumbnail
    from tam_engine.render.figure import map_over, resize_frame

    _png(tmp_path / "a.png", 0)
    run_batch(collect_items(str(tmp_path / "*.png")), fake_explain, tmp_path / "out",
              progress=False)
    (rec,) = read_index(tmp_path / "out")
    assert rec["top_word"] is not None
    expl = Explanation.load(tmp_path / "out" / rec["file"])
    tokens = rec["words"][rec["top_word"]]["tokens"]
    expected = map_over(resize_frame(expl.media[0].frames[0], 160), expl, tokens[0],
                        tokens=tokens)
    np.testing.assert_array_equal(render_thumbnail(tmp_path / "out", rec), expected)
    path = cached_thumbnail(tmp_path / "out", rec)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), expected)
    stamp = path.stat().st_mtime_ns
    assert cached_thumbnail(tmp_path / "out", rec) == path and path.stat().st_mtime_ns == stamp


def test_report_is_one_self_contained_page(folder, tmp_path, capsys):
    import re

    out = tmp_path / "out"
    run_batch(collect_items(str(folder)), fake_explain, out, progress=False)
    assert main(["export", str(out), "report"]) == 0
    page = (out / "report.html").read_text()
    recs = read_index(out)
    assert page.count('class="card"') == 4 and page.count('class="card err"') == 1
    assert "not a readable image" in page
    maps = json.loads(re.search(r"const MAPS = (\{.*?\});\n", page).group(1))
    for n, rec in enumerate(recs):
        for j in range(len(rec["words"])):
            assert maps[f"i{n}w{j}"].startswith("data:image/png;base64,")
    assert "http://" not in page and "https://" not in page
    # A single explanation is not a batch; a batch folder gives only a report.
    assert main(["export", str(out), "png"]) == 2
    assert "only a report" in capsys.readouterr().err
