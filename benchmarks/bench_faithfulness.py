"""The paper's metrics, the pointing game and deletion/insertion AUC on the demo's held-out
scenes, for full TAM, each ablation and the three chance lines, in one command.

Writes the held-out scenes (:data:`tam_engine.demo.quality.HELDOUT_SEED`, images only, as
``tam synth`` would) unless they are there, then runs ``tam eval`` with ``--ablation
--faithfulness deletion,insertion`` on the bundled demo model (or ``--model``), on the CPU in
float32, with the demo's own prompt. Resumable as ``tam eval`` is: run it again after an
interruption. Prints ``tam eval``'s tables, then one Markdown table of everything and the
sha256 of the weights measured; writes ``faithfulness.md`` and the results beside them.

    PYTHONPATH=. python benchmarks/bench_faithfulness.py --images 100 --steps 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANT_TITLES = {"both": "TAM (ECI + filter)", "eci": "ECI, no filter",
                  "filter": "filter, no ECI", "neither": "neither (raw logit maps)"}
CHANCE_TITLES = {"uniform": "chance: uniform (random order)", "centre": "chance: centre prior",
                 "random": "chance: random smooth map"}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def markdown(summary: dict) -> str:
    """One row per variant and chance line: the paper's metrics, pointing, deletion, insertion."""
    faith = summary.get("faithfulness") or {"variants": {}, "chance": {}}

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    rows = ["| map | Obj-IoU | Func-IoU | F1-IoU | pointing | deletion AUC (lower better) "
            "| insertion AUC (higher better) |", "|---|---|---|---|---|---|---|"]
    for group, titles in (("variants", VARIANT_TITLES), ("chance", CHANCE_TITLES)):
        for name, title in titles.items():
            s = summary.get(group, {}).get(name)
            if s is None:
                continue
            f = faith[group].get(name, {})
            rows.append(f"| {title} | {pct(s['obj_iou'])} | {pct(s['func_iou'])} | "
                        f"{pct(s['f1_iou'])} | {pct(s.get('pointing'))} | "
                        f"{pct(f.get('deletion', {}).get('auc'))} | "
                        f"{pct(f.get('insertion', {}).get('auc'))} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from tam_engine.cli import main as tam
    from tam_engine.core.resources import demo_model_path
    from tam_engine.demo.quality import HELDOUT_SEED, IMAGE_PROMPT
    from tam_engine.demo.synth import write_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100, help="held-out scenes (default: 100)")
    ap.add_argument("--steps", type=int, default=10, help="deletion/insertion steps K")
    ap.add_argument("--batch", type=int, default=16, help="perturbed images per forward pass")
    ap.add_argument("--model", default=None, help="model folder (default: the bundled demo)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "tam-bench-faithfulness"),
                    help="folder for the scenes and the results (default: in the temp folder)")
    args = ap.parse_args(argv)

    model = Path(args.model) if args.model else demo_model_path()
    weights = sha256(model / "model.safetensors")
    work = Path(args.work)
    # One folder of scenes for every --images: a smaller run resumes (and reports on) the
    # first N items of a larger one.
    data = work / f"heldout_{HELDOUT_SEED}"
    if not (data / "meta.json").is_file() or len(
            json.loads((data / "meta.json").read_text(encoding="utf-8"))["items"]) < args.images:
        write_dataset(data, n_images=max(args.images, 200), n_videos=0, seed=HELDOUT_SEED)
    # The weights are part of the results' name: new weights start a new run, never resume
    # (and mix with) the old one.
    out = work / f"results_{weights[:12]}_k{args.steps}.json"
    argv_eval = ["eval", str(data), "--model", str(model), "--prompt", IMAGE_PROMPT,
                 "--max-new-tokens", "40", "--device", "cpu", "--dtype", "float32",
                 "--limit", str(args.images), "--ablation", "--faithfulness", "deletion,insertion",
                 "--faithfulness-steps", str(args.steps), "--faithfulness-batch",
                 str(args.batch), "--out", str(out)]
    print("tam " + " ".join(argv_eval), flush=True)
    rc = tam(argv_eval)
    if rc != 0:
        return rc
    summary = json.loads(out.read_text(encoding="utf-8"))["summary"]
    faith = summary.get("faithfulness") or {}
    text = (f"{summary['n_items']} held-out demo scenes (seed {HELDOUT_SEED}), "
            f"{faith.get('n_tokens', 0)} object tokens, K = {args.steps} steps; weights "
            f"{model / 'model.safetensors'} sha256 {weights}\n\n{markdown(summary)}\n")
    print("\n" + text)
    (work / "faithfulness.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
