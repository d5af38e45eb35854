"""Does the visual-evidence score tell present words from absent ones?

On held-out demo scenes (:data:`tam_engine.demo.quality.HELDOUT_SEED`), the bundled demo model
explains, by teacher forcing, the scene's correct caption and captions with one colour or shape
word swapped to one absent from the scene. Each colour/shape word of the correct caption is a
*present* example; each swapped word an *absent* one. Scored at the word's first token (where
the model commits to the word). Reported: the AUROC of
:func:`tam_engine.core.evidence.visual_evidence` separating present (positive) from absent,
beside two references: the mean of the final map (``visual_strength``) and the probability the
model gave the word's first token (a text-side signal, not a visual one).

    PYTHONPATH=. python benchmarks/bench_evidence.py --scenes 60
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


def _word_tokens(texts: list[str]) -> list[tuple[str, int]]:
    """``(word, first token index)`` of each word of the answer tokens."""
    from tam_engine.core.words import group_words

    return [(w.text.strip().lower(), w.tokens[0]) for w in group_words(texts)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=None, help="base seed (default: held-out)")
    ap.add_argument("--json", default=None, help="write the per-word scores here")
    args = ap.parse_args(argv)

    from tam_engine.core.evidence import visual_evidence
    from tam_engine.core.media import MediaItem
    from tam_engine.core.resources import demo_model_path
    from tam_engine.demo import synth
    from tam_engine.demo.quality import HELDOUT_SEED, IMAGE_PROMPT
    from tam_engine.inference.capture.given import GIVEN_META
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings

    seed = HELDOUT_SEED if args.seed is None else args.seed
    loaded = load_model(str(demo_model_path()), device="cpu", dtype="float32")
    settings = GenerationSettings(max_new_tokens=40, device="cpu", dtype="float32")
    rows: list[dict] = []
    t0 = time.time()
    for i in range(args.scenes):
        scene = synth.make_image_scene(synth.item_seed(seed, "image", i))
        media = [MediaItem(kind="image", path=f"synth-{i}.png", frames=scene.image[None])]
        objs = [(o.color, o.shape) for o in scene.objects]
        if _caption(objs) != scene.caption:
            raise SystemExit(f"caption rebuild differs: {_caption(objs)!r} vs {scene.caption!r}")
        rng = np.random.default_rng([seed, i])
        # (caption, index of the object changed or -1, which attribute, present?)
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
        for caption, j, attr in cases:
            expl = run_and_explain(loaded, media, IMAGE_PROMPT, settings, answer=caption)
            ev = visual_evidence(expl.answer)
            assert ev is not None  # a fresh explanation has its float stages
            strength = expl.answer.visual_strength()
            probs = expl.meta[GIVEN_META]["token_probs"]
            words = [(w, k) for w, k in _word_tokens(expl.answer.texts)
                     if w in synth.COLORS or w in synth.SHAPES]
            # words of object j in the caption: its colour then its shape
            for n, (w, k) in enumerate(words):
                obj, kind = divmod(n, 2)
                if j >= 0 and not (obj == j and ("color", "shape")[kind] == attr):
                    continue  # in a swapped caption only the swapped word is scored
                rows.append({"scene": i, "caption": caption, "word": w,
                             "present": j < 0, "attr": ("color", "shape")[kind],
                             "visual_evidence": float(ev[k]),
                             "visual_strength": float(strength[k]),
                             "prob": float(probs[k])})
        print(f"\rscene {i + 1}/{args.scenes} ({time.time() - t0:.0f} s)", end="",
              file=sys.stderr)
    print(file=sys.stderr)
    report = {"scenes": args.scenes, "seed": seed,
              "n_present": sum(r["present"] for r in rows),
              "n_absent": sum(not r["present"] for r in rows), "auroc": {}}
    for key in ("visual_evidence", "visual_strength", "prob"):
        for attr in ("all", "color", "shape"):
            sel = [r for r in rows if attr == "all" or r["attr"] == attr]
            report["auroc"][f"{key}/{attr}"] = round(auroc(
                [r[key] for r in sel if r["present"]],
                [r[key] for r in sel if not r["present"]]), 4)
    for key in ("visual_evidence", "visual_strength", "prob"):
        for present in (True, False):
            vals = [r[key] for r in rows if r["present"] is present]
            report[f"mean_{key}_{'present' if present else 'absent'}"] = round(
                float(np.mean(vals)), 4) if vals else None
    report["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"report": report, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
