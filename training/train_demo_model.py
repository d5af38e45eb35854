"""Train the bundled demo model: a tiny Qwen2-VL that captions synthetic shapes scenes.

Run from the repository root (CPU only; about 20-30 minutes on 2 cores)::

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
   and motion word on the final normed hidden state -- exactly the scores TAM reads -- are
   pushed by binary cross-entropy towards "present" where at least a quarter of that merged
   cell is covered by an object of that colour/shape/motion (per temporal slot for videos)
   and towards "absent" elsewhere; every other vocabulary entry is pushed towards "absent"
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

from tam_engine.demo import synth  # noqa: E402
from tam_engine.testing import tiny_models as tm  # noqa: E402

SIZE = 224  # scenes are drawn at this size
PATCH, MERGE, TPS = 14, 2, 2
CELL = PATCH * MERGE
IMAGE_PROMPTS = ("Describe this image.", "Describe this image in one sentence.",
                 "Describe the image.", "What objects are in this image?",
                 "Describe the scene in one sentence.", "What is in the picture?")
VIDEO_PROMPTS = ("Describe this video.", "What is happening in this video?",
                 "Describe the video.", "Describe the scene in one sentence.")
TRAIN_SEED = 20251125  # scene seeds for training come from this base (held-out: other bases)


def tokenizer_corpus() -> list[str]:
    """Sentences the BPE is trained on: every caption word becomes one token."""
    rng = np.random.default_rng(0)
    lines = list(IMAGE_PROMPTS) + list(VIDEO_PROMPTS)
    lines += ["user assistant system You are a helpful assistant."]
    for _ in range(400):
        lines.append(synth.make_image_scene(int(rng.integers(2**31)), size=56).caption)
    for _ in range(200):
        lines.append(synth.make_video_scene(int(rng.integers(2**31)), size=56,
                                            n_frames=2).caption)
    # Repeat the words so each wins its merges whatever the sentence statistics.
    lines += [" ".join(synth.CAPTION_WORDS)] * 50
    return lines


# Qwen2-VL's ChatML layout without the default system message: ten fewer tokens for the tiny
# LM's attention to spread over before it finds the image.
CHAT_TEMPLATE = tm.QWEN2_VL_CHAT_TEMPLATE.replace(
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}", "")


def build_processor(input_size: int):
    """The processor resizes any image (and video frame) to about ``input_size`` squared."""
    tokenizer = tm.qwen_tokenizer(tokenizer_corpus(), vocab_size=420)
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


# ---------------------------------------------------------------------------------- inputs
def patchify(frames: np.ndarray, mean: np.ndarray, std: np.ndarray, size: int
             ) -> torch.Tensor:
    """Qwen2-VL pixel patches of (n, H, W, 3) uint8 frames (n even, or 1 for an image).

    Same resize (torchvision bicubic, antialiased), layout and values as
    ``Qwen2VLImageProcessor``/``Qwen2VLVideoProcessor`` for square frames resized to ``size``
    (checked against the processor at start-up), but vectorised and fast.
    """
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvF

    x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # n, C, H, W uint8
    if x.shape[-1] != size:
        x = tvF.resize(x, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
    x = x.float().div_(255.0)
    x = (x - torch.from_numpy(mean)[:, None, None]) / torch.from_numpy(std)[:, None, None]
    if x.shape[0] == 1:
        x = x.repeat(TPS, 1, 1, 1)
    t = x.shape[0] // TPS
    g = size // PATCH
    x = x.reshape(t, TPS, 3, g // MERGE, MERGE, PATCH, g // MERGE, MERGE, PATCH)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(t * g * g, 3 * TPS * PATCH * PATCH)


def coverage(mask: np.ndarray, grid: int) -> np.ndarray:
    """Fraction of each merged cell covered: (H, W) -> (1, grid, grid); (n, H, W) -> per slot."""
    m = mask.astype(np.float32)
    if m.ndim == 2:
        m = m[None]
    n, h, w = m.shape
    if n > 1:
        m = m.reshape(n // TPS, TPS, h, w).mean(axis=1)
    if h % grid == 0 and w % grid == 0:
        return m.reshape(-1, grid, h // grid, grid, w // grid).mean(axis=(2, 4))
    # Cells that do not align with pixels (e.g. 224-px scenes on a 12 x 12 grid): each pixel
    # counts with the fraction of it that lies inside the cell.
    ay, ax = _cell_weights(h, grid), _cell_weights(w, grid)
    return np.einsum("iy,nyx,jx->nij", ay, m, ax).astype(np.float32)


def _cell_weights(n_px: int, grid: int) -> np.ndarray:
    """(grid, n_px): overlap of pixel y with cell i, divided by the cell's length."""
    edges = np.arange(grid + 1) * (n_px / grid)
    px = np.arange(n_px)
    lo = np.maximum(edges[:-1, None], px[None, :])
    hi = np.minimum(edges[1:, None], px[None, :] + 1)
    return np.clip(hi - lo, 0, None) / (n_px / grid)


def centre_cover(mask: np.ndarray, grid: int) -> np.ndarray:
    """1 where the object covers a merged cell's centre point, else 0: (H, W) -> (1, grid, grid);
    (n, H, W) -> per temporal slot, where either frame of the slot counts."""
    m = np.asarray(mask, bool)
    if m.ndim == 2:
        m = m[None]
    n, h, w = m.shape
    if n > 1:
        m = m.reshape(n // TPS, TPS, h, w).any(axis=1)
    ys = ((np.arange(grid) + 0.5) * h / grid).astype(int)
    xs = ((np.arange(grid) + 0.5) * w / grid).astype(int)
    return m[:, ys][:, :, xs].astype(np.float32)


class Batcher:
    """Builds model inputs for scenes without running the (slow) processor each step."""

    def __init__(self, processor, size: int, hard: float = 0.0, centre: bool = False) -> None:
        self.proc = processor
        self.hard = hard
        self.centre = centre
        self.size = size
        self.grid = size // CELL
        self.tok = processor.tokenizer
        ip = processor.image_processor
        self.mean = np.asarray(ip.image_mean, np.float32)
        self.std = np.asarray(ip.image_std, np.float32)
        self.image_id = self.tok.convert_tokens_to_ids("<|image_pad|>")
        self.video_id = self.tok.convert_tokens_to_ids("<|video_pad|>")
        self.pad_id = self.tok.convert_tokens_to_ids("<|endoftext|>")
        self.eos_id = self.tok.convert_tokens_to_ids("<|im_end|>")
        self.word_ids = {}
        for w in synth.CAPTION_WORDS:
            ids = self.tok(" " + w, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise RuntimeError(f"caption word {w!r} is not one token: {ids}")
            self.word_ids[w] = ids[0]
        self.prefix_cache: dict[tuple[str, str], list[int]] = {}

    def prefix(self, kind: str, prompt: str) -> list[int]:
        key = (kind, prompt)
        if key not in self.prefix_cache:
            msgs = [{"role": "user", "content": [{"type": kind}, {"type": "text",
                                                                  "text": prompt}]}]
            text = self.proc.apply_chat_template(msgs, add_generation_prompt=True,
                                                 tokenize=False)
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            pad = self.image_id if kind == "image" else self.video_id
            n_tok = self.grid * self.grid * (1 if kind == "image" else 4)
            i = ids.index(pad)
            self.prefix_cache[key] = ids[:i] + [pad] * n_tok + ids[i + 1:]
        return self.prefix_cache[key]

    def caption_ids(self, caption: str) -> list[int]:
        return self.tok(caption, add_special_tokens=False)["input_ids"] + [self.eos_id]

    def build(self, kind: str, scenes: list, prompts: list[str]) -> dict:
        seqs, labels, pix, targets = [], [], [], []
        for scene, prompt in zip(scenes, prompts):
            pre = self.prefix(kind, prompt)
            cap = self.caption_ids(scene.caption)
            seqs.append(pre + cap)
            labels.append([-100] * len(pre) + cap)
            frames = scene.image[None] if kind == "image" else scene.frames
            pix.append(patchify(frames, self.mean, self.std, self.size))
            targets.append(self.word_targets(scene))
        n = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), n), self.pad_id, dtype=torch.long)
        lab = torch.full((len(seqs), n), -100, dtype=torch.long)
        att = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, (s, lb) in enumerate(zip(seqs, labels)):
            input_ids[i, :len(s)] = torch.tensor(s)
            lab[i, :len(s)] = torch.tensor(lb)
            att[i, :len(s)] = 1
        pad = self.image_id if kind == "image" else self.video_id
        mm = (input_ids == pad).long() * (1 if kind == "image" else 2)
        t = 1 if kind == "image" else scenes[0].frames.shape[0] // TPS
        thw = torch.tensor([[t, self.size // PATCH, self.size // PATCH]] * len(seqs))
        out = {"input_ids": input_ids, "attention_mask": att, "labels": lab,
               "mm_token_type_ids": mm, "targets": torch.from_numpy(np.concatenate(targets))}
        if kind == "image":
            out.update(pixel_values=torch.cat(pix), image_grid_thw=thw)
        else:
            out.update(pixel_values_videos=torch.cat(pix), video_grid_thw=thw)
        return out

    def word_targets(self, scene) -> np.ndarray:
        """(cells, n_words) coverage targets in CAPTION_WORDS order (cells row-major t,h,w)."""
        per_word: dict[str, np.ndarray] = {}
        cells = None
        for o in scene.objects:
            cov = coverage(o.mask, self.grid).reshape(-1)
            if self.centre:
                # Binary targets on the cells whose centre the object covers: a plateau as
                # above, but without the rim cells that are mostly background.
                cov = centre_cover(o.mask, self.grid).reshape(-1)
            elif self.hard > 0:
                # Binary targets: the whole footprint of the object counts, evenly, so its
                # map is a plateau rather than a peak on one cell (the 3 x 3 rank filter keeps
                # a plateau in place; it can move an isolated cell on the border).
                cov = (cov >= self.hard).astype(np.float32)
            cells = cov.size
            for w in (o.color, o.shape, o.direction):
                if w is not None:
                    per_word[w] = np.maximum(per_word.get(w, 0.0), cov)
        if cells is None:
            cells = self.grid * self.grid
        out = np.zeros((cells, len(synth.CAPTION_WORDS)), np.float32)
        for j, w in enumerate(synth.CAPTION_WORDS):
            if w in per_word:
                out[:, j] = per_word[w]
        return out


# ---------------------------------------------------------------------------------- training
def check_against_processor(batcher: Batcher) -> None:
    """Our fast inputs must equal the real processor's, or training would not match use."""
    cases = [("image", synth.make_image_scene(1), IMAGE_PROMPTS[0]),
             ("video", synth.make_video_scene(1), VIDEO_PROMPTS[0])]
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
               base_seed: int = 7, lattice: int = synth.LATTICE) -> dict:
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
        make = synth.make_image_scene if kind == "image" else synth.make_video_scene
        scenes = [make(synth.item_seed(base_seed, kind, i), lattice=lattice) for i in range(n)]
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
                    lattice: int = synth.LATTICE) -> list:
    make = synth.make_image_scene if kind == "image" else synth.make_video_scene
    return [make(synth.item_seed(TRAIN_SEED, kind, step * n + i), size, lattice=lattice)
            for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="resources/demo_model")
    ap.add_argument("--steps", type=int, default=2500)
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
    processor = build_processor(args.size)
    batcher = Batcher(processor, args.size, args.hard_targets, args.centre_targets)
    check_against_processor(batcher)
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
        scenes = scenes_for_step(kind, step, n, lattice=args.lattice)
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
            print(f"eval step {step + 1}: {quick_eval(model, batcher, lattice=args.lattice)}",
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
