"""Does the visual-evidence score tell present words from absent ones?

On held-out demo scenes (:data:`tam_engine.demo.quality.HELDOUT_SEED`), the bundled demo model
explains, by teacher forcing, the scene's correct caption and captions with one colour or shape
word swapped to one absent from the scene. Each colour/shape word of the correct caption is a
*present* example; each swapped word an *absent* one. A word's score is the mean over its
tokens. Reported: the AUROC separating present (positive) from absent of
:func:`tam_engine.core.evidence.visual_evidence`, of the mean of the final map
(``visual_strength``) and of the probability the model gave the given token (a text-side
signal, not a visual one).

The flag (:mod:`tam_engine.core.flags`: an object word below a fraction of the median of its
caption's object words) is scored over every object word of every caption (the other words of
a swapped caption count as present): its fraction is calibrated for the best F1 on the first
``--calibrate`` held-out scenes, and its precision / recall measured on the next ``--scenes``
(never the calibration scenes), for the calibrated and for the shipped fraction.

    PYTHONPATH=. python benchmarks/bench_evidence.py --calibrate 30 --scenes 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def auroc(pos: list[float], neg: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counting one half (Mann-Whitney)."""
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    if not p.size or not n.size:
        return float("nan")
    greater = (p[:, None] > n[None, :]).sum()
    ties = (p[:, None] == n[None, :]).sum()
    return float((greater + 0.5 * ties) / (p.size * n.size))


def _caption(objs: list[tuple[str, str]]) -> str:
    phrases = [f"{'an' if c[0] in 'aeiou' else 'a'} {c} {s}" for c, s in objs]
    body = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return body + "."  # as tam_engine.demo.synth writes captions


SCORES = ("visual_strength", "visual_evidence", "prob")


def _scene_rows(loaded, settings, seed: int, i: int) -> list[dict]:
    """One row per object word of each caption of held-out scene ``i``: the correct caption
    and each one-word swap, every score of the word (mean over its tokens)."""
    from tam_engine.core.evidence import visual_evidence
    from tam_engine.core.flags import evidence_flags
    from tam_engine.core.media import MediaItem
    from tam_engine.demo import synth
    from tam_engine.demo.quality import IMAGE_PROMPT
    from tam_engine.inference.capture.given import GIVEN_META
    from tam_engine.inference.pipeline import run_and_explain

    scene = synth.make_image_scene(synth.item_seed(seed, "image", i))
    media = [MediaItem(kind="image", path=f"synth-{i}.png", frames=scene.image[None])]
    objs = [(o.color, o.shape) for o in scene.objects]
    if _caption(objs) != scene.caption:
        raise SystemExit(f"caption rebuild differs: {_caption(objs)!r} vs {scene.caption!r}")
    rng = np.random.default_rng([seed, i])
    # (caption, index of the object changed or -1, which attribute)
    cases: list[tuple[str, int, str]] = [(scene.caption, -1, "")]
    colours = [c for c in synth.COLORS if c not in {c for c, _ in objs}]
    shapes = [s for s in synth.SHAPES if s not in {s for _, s in objs}]
    for j in range(len(objs)):
        if colours:
            new = list(objs)
            new[j] = (str(rng.choice(colours)), objs[j][1])
            cases.append((_caption(new), j, "color"))
        if shapes:
            new = list(objs)
            new[j] = (objs[j][0], str(rng.choice(shapes)))
            cases.append((_caption(new), j, "shape"))
    rows = []
    for c, (caption, j, attr) in enumerate(cases):
        expl = run_and_explain(loaded, media, IMAGE_PROMPT, settings, answer=caption)
        ev = visual_evidence(expl.answer)
        assert ev is not None  # a fresh explanation has its float stages
        per = {"visual_strength": None,
               "visual_evidence": ev,
               "prob": np.asarray(expl.meta[GIVEN_META]["token_probs"], np.float32)}
        flags = {k: evidence_flags(expl.answer, expl.special(), score=v)
                 for k, v in per.items()}
        words = flags["visual_strength"].words
        if [w.word.key for w in words] != [x for o in objs for x in o] and j < 0:
            raise SystemExit(f"object words of {caption!r}: {[w.word.key for w in words]}")
        for n, w in enumerate(words):
            obj, kind = divmod(n, 2)
            swapped = j >= 0 and obj == j and ("color", "shape")[kind] == attr
            row = {"scene": i, "case": c, "caption": caption, "word": w.word.key,
                   "attr": ("color", "shape")[kind], "present": not swapped,
                   "correct_caption": j < 0}
            for k in SCORES:
                fw = flags[k].words[n]
                row[k] = fw.score
                row[k + "/median"] = flags[k].reference
            rows.append(row)
    return rows


def _flag_stats(rows: list[dict], key: str, fraction: float) -> dict:
    """Precision / recall / F1 of "flagged = score < fraction x the caption's median" for
    absent words, over every object word of every caption."""
    tp = fp = fn = 0
    for r in rows:
        flagged = bool(r[key + "/median"] is not None
                       and r[key] < fraction * r[key + "/median"])
        absent = not r["present"]
        tp += int(flagged and absent)
        fp += int(flagged and not absent)
        fn += int(not flagged and absent)
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * prec * rec / (prec + rec) if tp else 0.0
    return {"fraction": fraction, "precision": round(prec, 4), "recall": round(rec, 4),
            "f1": round(f1, 4), "flagged": tp + fp, "absent": tp + fn, "words": len(rows)}


FRACTIONS = tuple(round(float(f), 2) for f in (*np.arange(0.01, 0.1, 0.01),
                                                *np.arange(0.1, 1.0001, 0.05)))


def _report(rows: list[dict], calib: list[dict]) -> dict:
    rep: dict = {"n_present_correct": sum(r["correct_caption"] for r in rows),
                 "n_absent": sum(not r["present"] for r in rows), "auroc": {}, "flag": {}}
    for key in SCORES:
        for attr in ("all", "color", "shape"):
            sel = [r for r in rows if attr == "all" or r["attr"] == attr]
            # as before: words of the correct caption (present) vs swapped words (absent)
            rep["auroc"][f"{key}/{attr}"] = round(auroc(
                [r[key] for r in sel if r["correct_caption"]],
                [r[key] for r in sel if not r["present"]]), 4)
        # the flag's own score: relative to the caption's median, every word of every caption
        rel = [(r[key] / r[key + "/median"] if r[key + "/median"] else 1.0, r["present"])
               for r in rows]
        rep["auroc"][f"{key}/relative_all_captions"] = round(auroc(
            [v for v, p in rel if p], [v for v, p in rel if not p]), 4)
        if calib:
            # Ties: the largest fraction (more recall where another model's absent words
            # are dim rather than dark).
            best = max((_flag_stats(calib, key, f) for f in FRACTIONS),
                       key=lambda s: (s["f1"], s["fraction"]))
            rep["flag"][key] = {"calibrated_fraction": best["fraction"],
                                "calibration": best,
                                "held_out": _flag_stats(rows, key, best["fraction"])}
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=60, help="held-out scenes measured")
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="first N held-out scenes calibrate the flag's fraction (best F1); "
                         "the measured scenes are the next --scenes")
    ap.add_argument("--seed", type=int, default=None, help="base seed (default: held-out)")
    ap.add_argument("--json", default=None, help="write the per-word scores here")
    args = ap.parse_args(argv)

    from tam_engine.core.flags import FLAG_FRACTION
    from tam_engine.core.resources import demo_model_path
    from tam_engine.demo.quality import HELDOUT_SEED
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.settings import GenerationSettings

    seed = HELDOUT_SEED if args.seed is None else args.seed
    loaded = load_model(str(demo_model_path()), device="cpu", dtype="float32")
    settings = GenerationSettings(max_new_tokens=40, device="cpu", dtype="float32")
    calib: list[dict] = []
    rows: list[dict] = []
    t0 = time.time()
    total = args.calibrate + args.scenes
    for i in range(total):
        (calib if i < args.calibrate else rows).extend(_scene_rows(loaded, settings, seed, i))
        print(f"\rscene {i + 1}/{total} ({time.time() - t0:.0f} s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    report = {"seed": seed, "calibration_scenes": [0, args.calibrate],
              "measured_scenes": [args.calibrate, total], **_report(rows, calib),
              "shipped_fraction": FLAG_FRACTION,
              "shipped_flag_held_out": _flag_stats(rows, "visual_strength", FLAG_FRACTION)}
    for key in SCORES:
        for present in (True, False):
            vals = [r[key] for r in rows if r["present"] is present
                    and (r["correct_caption"] or not present)]
            report[f"mean_{key}_{'present' if present else 'absent'}"] = round(
                float(np.mean(vals)), 4) if vals else None
    report["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"report": report, "rows": rows, "calibration_rows": calib}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
