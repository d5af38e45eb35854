"""Train the bundled demo model: a tiny Qwen2-VL that captions synthetic shapes scenes.

Run from the repository root (CPU only, one thread; about 30 minutes on a quiet machine)::

    python training/train_demo_model.py --out resources/demo_model

Everything is deterministic: fixed seeds, ``torch.use_deterministic_algorithms(True)``, a fixed
thread count (``--threads``, default 1), and scenes drawn from :mod:`tam_engine.demo.synth` by seed
(training seeds never overlap the held-out seeds of :mod:`tam_engine.demo.quality`).

Model: ``Qwen2VLForConditionalGeneration`` (vision tower 2 blocks x 64, LM 2 layers x 128,
about 0.64 M parameters) with its own 402-token byte-level BPE and the real
``Qwen2VLProcessor`` (image and video processor, chat template) that resizes every image and
video frame to 336 x 336 pixels: 12 x 12 merged vision tokens per image or per temporal slot of
a video (the 224-px scenes are scaled up; a finer grid keeps the 3 x 3 rank filter's border
effects off most objects).

Objectives
----------
1. Captioning: next-token cross-entropy on the answer (caption + ``<|im_end|>``).
2. Grounding (auxiliary): at every vision token, the ``lm_head`` scores of each colour, shape
   (and, with ``--video-captions motion``, direction) word the caption says, on the final
   normed hidden state -- exactly the scores TAM reads -- are pushed by binary cross-entropy
   towards "present" where at least a quarter of that merged cell is covered by an object of
   that colour/shape/motion (per temporal slot for videos) and towards "absent" elsewhere; every other vocabulary entry is pushed towards "absent"
   there. The same word scores are also trained on the
   residual stream entering each decoder layer (``--inner-weight``), so text positions can
   read the words from the vision tokens early; without it the tiny LM ignored the image.
   This objective trains the very signal TAM visualises: the demo model shows how the tool
   works; it is no evidence about how real multimodal LLMs behave.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

# Determinism needs these before torch starts its thread pools.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from demo_inputs import (  # noqa: E402  (training/ is the script's folder)
    IMAGE_PROMPTS,
    MERGE,
    PATCH,
    SIZE,
    TPS,
    TRAIN_SEED,
    VIDEO_PROMPTS,
    Batcher,
    coverage,
)

from tam_engine.demo import synth  # noqa: E402
from tam_engine.testing import tiny_models as tm  # noqa: E402


def tokenizer_corpus(video: dict | None = None) -> list[str]:
    """Sentences the BPE is trained on: every caption word becomes one token."""
    rng = np.random.default_rng(0)
    lines = list(IMAGE_PROMPTS) + list(VIDEO_PROMPTS)
    lines += ["user assistant system You are a helpful assistant."]
    for _ in range(400):
        lines.append(synth.make_image_scene(int(rng.integers(2**31)), size=56).caption)
    for _ in range(200):
        lines.append(synth.make_video_scene(int(rng.integers(2**31)), size=56,
                                            n_frames=2, **(video or {})).caption)
    # Repeat the words so each wins its merges whatever the sentence statistics.
    lines += [" ".join(synth.CAPTION_WORDS)] * 50
    return lines


# Qwen2-VL's ChatML layout without the default system message: ten fewer tokens for the tiny
# LM's attention to spread over before it finds the image.
CHAT_TEMPLATE = tm.QWEN2_VL_CHAT_TEMPLATE.replace(
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}", "")


def build_processor(input_size: int, video: dict | None = None):
    """The processor resizes any image (and video frame) to about ``input_size`` squared.

    ``video``: keyword arguments of :func:`synth.make_video_scene` (travel, captions)."""
    tokenizer = tm.qwen_tokenizer(tokenizer_corpus(video), vocab_size=420)
    # min = max: smaller frames are scaled up too, so the 224-px scenes fill a larger grid.
    return tm.build_qwen2_vl_processor(tokenizer, min_pixels=input_size * input_size,
                                       max_pixels=input_size * input_size,
                                       chat_template=CHAT_TEMPLATE)


def build_model(tokenizer, seed: int, hidden: int, layers: int, vdepth: int, vdim: int):
    import transformers as tf

    torch.manual_seed(seed)
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    heads = 4
    half = hidden // heads // 2
    section = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text = {"vocab_size": len(tokenizer), "hidden_size": hidden,
            "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": 2,
            "max_position_embeddings": 2048, "bos_token_id": pad, "eos_token_id": eos,
            "pad_token_id": pad, "tie_word_embeddings": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": section}}
    vision = {"depth": vdepth, "embed_dim": vdim, "hidden_size": hidden, "num_heads": 4,
              "mlp_ratio": 2, "patch_size": PATCH, "spatial_merge_size": MERGE,
              "temporal_patch_size": TPS}
    config = tf.Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    model = tf.Qwen2VLForConditionalGeneration(config)
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id, gc.do_sample = eos, pad, pad, False
    return model


# ---------------------------------------------------------------------------------- training
def check_against_processor(batcher: Batcher, video: dict | None = None) -> None:
    """Our fast inputs must equal the real processor's, or training would not match use."""
    cases = [("image", synth.make_image_scene(1), IMAGE_PROMPTS[0]),
             ("video", synth.make_video_scene(1, **(video or {})), VIDEO_PROMPTS[0])]
    for kind, scene, prompt in cases:
        msgs = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": prompt}]}]
        text = batcher.proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        media = {"images": [scene.image]} if kind == "image" else {"videos": [scene.frames]}
        ref = batcher.proc(text=[text], return_tensors="pt", **media)
        ours = batcher.build(kind, [scene], [prompt])
        grid, pixels = (("image_grid_thw", "pixel_values") if kind == "image"
                        else ("video_grid_thw", "pixel_values_videos"))
        n = ref["input_ids"].shape[1]
        assert torch.equal(ref["input_ids"][0], ours["input_ids"][0, :n]), f"{kind} ids differ"
        assert torch.equal(ref[grid], ours[grid]), f"{kind} grid differs"
        err = (ref[pixels] - ours[pixels]).abs().max().item()
        assert err < 0.05, f"{kind} pixel values differ by {err}"


def losses(model, batch: dict, word_cols: torch.Tensor, aux_weight: float,
           other_weight: float, pos_weight: torch.Tensor | None = None,
           lm_weight: float = 1.0, inner_weight: float = 0.0
           ) -> tuple[torch.Tensor, dict]:
    kw = {k: v for k, v in batch.items() if k not in ("labels", "targets")}
    out = model.model(**kw, use_cache=False, output_hidden_states=inner_weight > 0)
    h = out.last_hidden_state  # final normed hidden states, what lm_head reads
    labels = batch["labels"]
    # Position p predicts token p+1.
    sel = labels[:, 1:] != -100
    hs = h[:, :-1][sel]
    logits = model.lm_head(hs)
    lm = F.cross_entropy(logits.float(), labels[:, 1:][sel])
    ids = batch["input_ids"]
    vis = (ids == model.config.image_token_id) | (ids == model.config.video_token_id)
    hv = h[vis]
    sv = model.lm_head(hv).float()  # (cells, V): every word's score at every vision token
    tgt = batch["targets"]
    word_scores = sv[:, word_cols]
    aux_words = F.binary_cross_entropy_with_logits(word_scores, tgt, pos_weight=pos_weight)
    others = torch.ones(sv.shape[1], dtype=torch.bool)
    others[word_cols] = False
    aux_other = F.binary_cross_entropy_with_logits(sv[:, others],
                                                   torch.zeros_like(sv[:, others]))
    total = lm_weight * lm + aux_weight * aux_words + other_weight * aux_other
    parts = {"lm": lm.item(), "aux": aux_words.item(), "other": aux_other.item()}
    if inner_weight > 0:
        # The same word scores on the residual stream entering each decoder layer: vision
        # tokens then carry their words in lm_head's space at every depth, so a text position
        # that attends to them can read them out from the first layer on. Without it the tiny
        # LM ignored the image for hundreds of steps.
        n_layers = model.config.text_config.num_hidden_layers
        norm = model.model.language_model.norm
        inner = 0.0
        for hid in out.hidden_states[:n_layers]:
            si = model.lm_head(norm(hid[vis]))[:, word_cols].float()
            inner = inner + F.binary_cross_entropy_with_logits(si, tgt, pos_weight=pos_weight)
        inner = inner / n_layers
        total = total + inner_weight * inner
        parts["inner"] = float(inner.detach())
    return total, parts


def _phrases(caption: str) -> list[str]:
    return [p.strip() for p in caption.rstrip(".").replace(" and ", ",").split(",") if p.strip()]


@torch.no_grad()
def quick_eval(model, batcher: Batcher, n_images: int = 64, n_videos: int = 16,
               base_seed: int = 7, lattice: int = synth.LATTICE,
               video: dict | None = None) -> dict:
    """Greedy caption accuracy and a raw-score grounding proxy on held-out scenes.

    The proxy: for each colour/shape word of the true caption, is the vision cell with the
    highest score of that word covered by the named object (>= 25 %)? The full measurement
    with TAM proper is :mod:`tam_engine.demo.quality`.
    """
    model.eval()
    res = {}
    for kind, n in (("image", n_images), ("video", n_videos)):
        if n == 0:
            continue
        if kind == "image":
            scenes = [synth.make_image_scene(synth.item_seed(base_seed, kind, i),
                                             lattice=lattice) for i in range(n)]
        else:
            scenes = [synth.make_video_scene(synth.item_seed(base_seed, kind, i),
                                             lattice=lattice, **(video or {}))
                      for i in range(n)]
        prompt = (IMAGE_PROMPTS if kind == "image" else VIDEO_PROMPTS)[0]
        correct = 0
        errs: dict[str, int] = {}
        examples: list[tuple[str, str]] = []
        hits = {"color": [0, 0], "shape": [0, 0]}
        for i in range(0, n, 16):
            chunk = scenes[i:i + 16]
            batch = batcher.build(kind, chunk, [prompt] * len(chunk))
            plen = len(batcher.prefix(kind, prompt))
            kw = {k: v[:, :plen] if k in ("input_ids", "attention_mask", "mm_token_type_ids")
                  else v for k, v in batch.items() if k not in ("labels", "targets")}
            kw = {k: v.to(model.device) for k, v in kw.items()}
            gen = model.generate(**kw, max_new_tokens=40, do_sample=False)
            texts = batcher.tok.batch_decode(gen[:, plen:], skip_special_tokens=True)
            correct += sum(t.strip() == s.caption for t, s in zip(texts, chunk))
            for t, sc in zip(texts, chunk):
                got = set(_phrases(t.strip()))
                want = set(_phrases(sc.caption))
                key = ("ok" if t.strip() == sc.caption else "order" if got == want
                       else "count" if len(got) != len(want) else "words")
                errs[key] = errs.get(key, 0) + 1
                if key != "ok" and len(examples) < 4:
                    examples.append((sc.caption, t.strip()))
            out = model.model(**kw, use_cache=False).last_hidden_state
            ids = kw["input_ids"]
            vis = (ids == model.config.image_token_id) | (ids == model.config.video_token_id)
            per = int(vis[0].sum())
            n_slots = per // (batcher.grid * batcher.grid)
            for b, sc in enumerate(chunk):
                hv = out[b][vis[b]]
                for o in sc.objects:
                    cov = coverage(o.mask, batcher.grid).reshape(n_slots, -1)
                    for w, wk in ((o.color, "color"), (o.shape, "shape")):
                        s = (hv @ model.lm_head.weight[batcher.word_ids[w]]).float()
                        s = s.reshape(n_slots, -1)
                        for t in range(n_slots):
                            hits[wk][1] += 1
                            hits[wk][0] += bool(cov[t, int(s[t].argmax())] >= 0.25)
        res[f"{kind}_caption_acc"] = correct / n
        res[f"{kind}_outcomes"] = errs
        res[f"{kind}_examples"] = examples
        for wk, (h, tot) in hits.items():
            res[f"{kind}_{wk}_peak_proxy"] = round(h / max(1, tot), 3)
    model.train()
    return res


def scenes_for_step(kind: str, step: int, n: int, size: int = SIZE,
                    lattice: int = synth.LATTICE, video: dict | None = None) -> list:
    if kind == "image":
        return [synth.make_image_scene(synth.item_seed(TRAIN_SEED, kind, step * n + i), size,
                                       lattice=lattice) for i in range(n)]
    return [synth.make_video_scene(synth.item_seed(TRAIN_SEED, kind, step * n + i), size,
                                   lattice=lattice, **(video or {})) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="resources/demo_model")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16, help="images per image step")
    ap.add_argument("--video-batch", type=int, default=4, help="videos per video step")
    ap.add_argument("--video-every", type=int, default=4, help="every k-th step is videos")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vision-depth", type=int, default=2)
    ap.add_argument("--vision-dim", type=int, default=64)
    ap.add_argument("--aux-weight", type=float, default=1.0)
    ap.add_argument("--lm-weight", type=float, default=1.0)
    ap.add_argument("--inner-weight", type=float, default=0.5,
                    help="grounding loss on the inputs of the decoder layers too")
    ap.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    ap.add_argument("--other-weight", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=336, help="model input size in pixels")
    ap.add_argument("--lattice", type=int, default=synth.LATTICE,
                    help="object centres on this lattice (see tam_engine.demo.synth)")
    ap.add_argument("--video-travel", type=int, default=synth.VIDEO_TRAVEL,
                    help="lattice cells each video object moves over the clip")
    ap.add_argument("--video-captions", choices=("motion", "objects"),
                    default=synth.VIDEO_CAPTIONS,
                    help="video captions say where each object moves, or name the objects only")
    ap.add_argument("--hard-targets", type=float, default=0.25, metavar="COVER",
                    help="binary grounding targets: 1 where a cell is covered >= COVER (0: soft)")
    ap.add_argument("--centre-targets", action="store_true",
                    help="binary grounding targets: 1 where the object covers the cell's centre "
                    "(overrides --hard-targets)")
    ap.add_argument("--pos-weight", type=float, default=4.0,
                    help="weight of the present class in the grounding loss")
    # One thread: on a shared 2-core machine two OpenMP threads fighting other processes ran
    # ten times slower than one.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--save-every", type=int, default=0, help="checkpoint every k steps")
    ap.add_argument("--eval-every", type=int, default=0, help="quick held-out eval (0: off)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    # CUDA lacks deterministic kernels for a few ops; the shipped weights come from the CPU run.
    torch.use_deterministic_algorithms(True, warn_only=args.device != "cpu")
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    t0 = time.time()
    video = {"travel": args.video_travel, "captions": args.video_captions}
    processor = build_processor(args.size, video)
    batcher = Batcher(processor, args.size, args.hard_targets, args.centre_targets)
    check_against_processor(batcher, video)
    model = build_model(processor.tokenizer, args.seed, args.hidden, args.layers,
                        args.vision_depth, args.vision_dim).to(device)
    model.train()
    word_cols = torch.tensor([batcher.word_ids[w] for w in synth.CAPTION_WORDS], device=device)
    pos_weight = torch.full((len(word_cols),), args.pos_weight, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params / 1e6:.2f} M, vocab {len(processor.tokenizer)}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01,
                            betas=(0.9, 0.98))
    warm = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warm:
            return args.lr * (step + 1) / warm
        p = (step - warm) / max(1, args.steps - warm)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    prompt_rng = np.random.default_rng(args.seed + 1)
    hist: dict[str, list[float]] = {}
    for step in range(args.steps):
        kind = "video" if args.video_every and step % args.video_every == args.video_every - 1 \
            else "image"
        n = args.batch if kind == "image" else args.video_batch
        scenes = scenes_for_step(kind, step, n, lattice=args.lattice, video=video)
        pool = IMAGE_PROMPTS if kind == "image" else VIDEO_PROMPTS
        prompts = [pool[int(i)] for i in prompt_rng.integers(0, len(pool), size=n)]
        batch = {k: v.to(device) for k, v in batcher.build(kind, scenes, prompts).items()}
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss, parts = losses(model, batch, word_cols, args.aux_weight, args.other_weight,
                             pos_weight, args.lm_weight, args.inner_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        for k, v in parts.items():
            hist.setdefault(f"{kind}_{k}", []).append(v)
        if (step + 1) % args.log_every == 0 or step == args.steps - 1:
            msg = " ".join(f"{k} {np.mean(v[-20:]):.3f}" for k, v in sorted(hist.items()))
            print(f"step {step + 1}/{args.steps} {time.time() - t0:.0f}s {msg}", flush=True)
        if args.eval_every and ((step + 1) % args.eval_every == 0 or step == args.steps - 1):
            print(f"eval step {step + 1}: {quick_eval(model, batcher, lattice=args.lattice, video=video)}",
                  flush=True)

        if args.save_every and (step + 1) % args.save_every == 0:
            model.save_pretrained(Path(args.out) / f"step{step + 1}", safe_serialization=True)

    elapsed = time.time() - t0
    model.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu", dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    info = {"command": "python training/train_demo_model.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "args": vars(args),
        "train_seconds": round(elapsed, 1), "params": n_params,
        "torch": torch.__version__, "final_losses": {k: float(np.mean(v[-20:]))
                                                    for k, v in hist.items()}}
    (out / "training_info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"saved to {out} after {elapsed:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
