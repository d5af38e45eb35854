"""Inputs of the demo model's training: the scene constants, Qwen2-VL pixel patches made
without the (slow) processor, the grounding targets (how much of each map cell an object
covers), and the batcher that turns scenes into model inputs. Used by train_demo_model.py and
checked against the real processor in tests/engine/test_training_targets.py."""

from __future__ import annotations

import numpy as np
import torch

from tam_engine.demo import synth

SIZE = 224  # scenes are drawn at this size
PATCH, MERGE, TPS = 14, 2, 2
CELL = PATCH * MERGE
IMAGE_PROMPTS = ("Describe this image.", "Describe this image in one sentence.",
                 "Describe the image.", "What objects are in this image?",
                 "Describe the scene in one sentence.", "What is in the picture?")
VIDEO_PROMPTS = ("Describe this video.", "What is happening in this video?",
                 "Describe the video.", "Describe the scene in one sentence.",
                 "Describe this video in one sentence.")
TRAIN_SEED = 20251125  # scene seeds for training come from this base (held-out: other bases)



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
        """(cells, n_words) coverage targets in CAPTION_WORDS order (cells row-major t,h,w).

        Only words the caption says are grounded: a direction word where video captions name
        the objects only would train a score the answer never reads."""
        said = set(scene.caption.rstrip(".").replace(",", " ").split())
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
                if w is not None and w in said:
                    per_word[w] = np.maximum(per_word.get(w, 0.0), cov)
        if cells is None:
            cells = self.grid * self.grid
        out = np.zeros((cells, len(synth.CAPTION_WORDS)), np.float32)
        for j, w in enumerate(synth.CAPTION_WORDS):
            if w in per_word:
                out[:, j] = per_word[w]
        return out


