"""Evaluation datasets: media, reference captions and per-category ground-truth masks.

Four layouts are read (see the README section "Evaluating"):

- ``synthetic``: the layout ``tam synth`` writes (``meta.json`` with format ``tam-synthetic``).
- ``coco``: COCO-2014 instances (``annotations/instances_*.json``, polygons or RLE) plus, when
  present, ``annotations/captions_*.json`` for reference captions.
- ``grandf`` and ``openpsg``: the grounded-caption (GCG) annotations GLaMM publishes for
  GranD-f and OpenPSG, either the list form (``GranDf_HA_GCG_*.json``, ``OpenPsgGCG_*.json``)
  or GranD-f's COCO-style ``{val,test}_gcg_coco_{caption,mask}_gt.json`` pair.

Masks are decoded only when an item is scored (:meth:`EvalItem.masks`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tam_engine.core.errors import TamError
from tam_engine.eval.coco_names import COCO_SYNONYMS
from tam_engine.eval.masks import rle_to_mask, segmentation_to_mask
from tam_engine.eval.words import Vocabulary, is_function_word, phrase_head

FORMATS = ("synthetic", "coco", "grandf", "openpsg")
DatasetFormat = Literal["synthetic", "coco", "grandf", "openpsg"]

SHAPE_SYNONYMS = {"circle": ("disc", "disk", "dot", "ball"), "square": ("box", "block"),
                  "triangle": ()}


class DatasetError(TamError):
    """An evaluation dataset cannot be found or read."""


@dataclass
class EvalItem:
    """One evaluation sample.

    ``masks()`` returns ``{category: bool mask}``, ``(H, W)`` for an image or ``(n, H, W)`` for
    a video (one mask per decoded frame at ``mask_fps``).
    """

    id: str
    kind: Literal["image", "video"]
    media: list[str]
    references: list[str]
    vocabulary: Vocabulary
    mask_fps: float | None = None
    _load_masks: Callable[[], dict[str, np.ndarray]] = field(repr=False, default=dict)

    def masks(self) -> dict[str, np.ndarray]:
        return self._load_masks()


@dataclass
class EvalDataset:
    format: str
    root: Path
    items: list[EvalItem]
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------- helpers
def _read_json(path: Path):
    try:
        with path.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"Cannot read {path.name}: {exc}",
                           "Check that the annotation file is complete JSON.") from exc


def _read_mask_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def _find_image(name: str, dirs: Iterable[Path]) -> Path | None:
    for d in dirs:
        for cand in (d / name, d / Path(name).name):
            if cand.is_file():
                return cand
    return None


def _existing(root: Path, rels: Iterable[str]) -> list[Path]:
    return [root / r for r in rels if (root / r).is_dir()]


def coco_vocabulary(names: Iterable[str]) -> Vocabulary:
    names = list(names)
    return Vocabulary({n: COCO_SYNONYMS.get(n, ()) for n in names})


def _head_synonyms(head: str) -> tuple[str, ...]:
    """COCO words naming the same thing as a phrase head ("man" -> "person", "woman", ...)."""
    for cat, syns in COCO_SYNONYMS.items():
        if head == cat or head in syns:
            return (cat, *syns)
    return ()


# --------------------------------------------------------------------------- synthetic
def read_synthetic(root: Path) -> EvalDataset:
    meta = _read_json(root / "meta.json")
    if meta.get("format") != "tam-synthetic":
        raise DatasetError(f"{root / 'meta.json'} is not a tam-synthetic dataset.",
                           "Create one with: tam synth OUT_DIR --images 20")
    items = []
    for rec in meta.get("items", []):
        objs = rec.get("objects", [])
        shape_count: dict[str, int] = {}
        for o in objs:
            shape_count[o["category"]] = shape_count.get(o["category"], 0) + 1
        cats: dict[str, tuple[str, ...]] = {}
        key_of = []
        for o in objs:
            key = " ".join(o.get("words") or [o.get("color", ""), o["category"]]).strip()
            syns: tuple[str, ...] = ()
            if shape_count[o["category"]] == 1:
                # A shape named alone is unambiguous only when the scene has one of it.
                syns = (o["category"], *SHAPE_SYNONYMS.get(o["category"], ()))
            cats[key] = cats.get(key, ()) + syns
            key_of.append(key)

        def load(objs=objs, key_of=key_of) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            for o, key in zip(objs, key_of):
                p = root / o["mask"]
                if p.suffix == ".npz":
                    with np.load(p) as z:
                        m = z["masks"].astype(bool)
                else:
                    m = _read_mask_png(p)
                out[key] = out[key] | m if key in out else m
            return out

        items.append(EvalItem(
            id=str(rec["id"]), kind=rec.get("type", "image"), media=[str(root / rec["file"])],
            references=[rec["caption"]] if rec.get("caption") else [],
            vocabulary=Vocabulary(cats), mask_fps=rec.get("fps"), _load_masks=load))
    return EvalDataset("synthetic", root, items)


# --------------------------------------------------------------------------- COCO
def _pick(files: list[Path], prefer: tuple[str, ...] = ("minival", "val", "test")) -> Path:
    for word in prefer:
        for f in files:
            if word in f.name:
                return f
    return files[0]


def read_coco(root: Path) -> EvalDataset:
    ann_dir = root / "annotations" if (root / "annotations").is_dir() else root
    inst_files = sorted(ann_dir.glob("instances_*.json"))
    if not inst_files:
        raise DatasetError(f"No annotations/instances_*.json in {root}.",
                           "Point tam eval at the folder that holds annotations/ and the images "
                           "(for example the COCO 2014 minival files).")
    inst_path = _pick(inst_files)
    inst = _read_json(inst_path)
    split = inst_path.stem.removeprefix("instances_")
    cat_names = {int(c["id"]): c["name"] for c in inst.get("categories", [])}
    vocab = coco_vocabulary(cat_names.values())
    refs: dict[int, list[str]] = {}
    for cap_path in sorted(ann_dir.glob("captions_*.json")):
        for a in _read_json(cap_path).get("annotations", []):
            refs.setdefault(int(a["image_id"]), []).append(str(a["caption"]).strip())
    anns: dict[int, list[dict]] = {}
    for a in inst.get("annotations", []):
        anns.setdefault(int(a["image_id"]), []).append(a)
    dirs = _existing(root, ["image", "images", f"images/{split}", split, "val2014", "train2014",
                            "images/val2014", "."])
    items, skipped = [], 0
    for img in sorted(inst.get("images", []), key=lambda r: int(r["id"])):
        iid = int(img["id"])
        if iid not in anns:
            continue
        # Reformatted copies often drop the "COCO_val2014_" prefix: try the bare id too.
        path = None
        for name in (img["file_name"], f"{iid:012d}.jpg", f"{iid:012d}.png"):
            path = path or _find_image(name, dirs)
        if path is None:
            skipped += 1
            continue
        h, w = int(img["height"]), int(img["width"])

        def load(a_list=anns[iid], h=h, w=w) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            for a in a_list:
                name = cat_names.get(int(a["category_id"]))
                if name is None or not a.get("segmentation"):
                    continue
                m = segmentation_to_mask(a["segmentation"], h, w)
                out[name] = out[name] | m if name in out else m
            return out

        items.append(EvalItem(id=str(iid), kind="image", media=[str(path)],
                              references=refs.get(iid, []), vocabulary=vocab, _load_masks=load))
    if not items:
        raise DatasetError(f"No images of {inst_path.name} were found under {root}.",
                           "Put the images in image/, images/ or val2014/ next to annotations/.")
    return EvalDataset("coco", root, items, skipped)


# --------------------------------------------------------------------------- GranD-f / OpenPSG
def _gcg_item(iid: str, path: Path, caption: str, phrases: list[tuple[str, Callable]]
              ) -> EvalItem:
    """Categories of a grounded caption: one per phrase head noun, masks united."""
    cats: dict[str, tuple[str, ...]] = {}
    heads = []
    for phrase, _ in phrases:
        head = phrase_head(phrase)
        heads.append(head)
        if is_function_word(head):
            continue            # "it", "them": nothing to name in a caption
        cats[head] = cats.get(head, ()) + _head_synonyms(head)

    def load() -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for head, (_, get) in zip(heads, phrases):
            if head not in cats:
                continue
            m = get()
            out[head] = out[head] | m if head in out else m
        return out

    return EvalItem(id=iid, kind="image", media=[str(path)],
                    references=[caption] if caption else [], vocabulary=Vocabulary(cats),
                    _load_masks=load)


def _gcg_dirs(root: Path) -> list[Path]:
    return _existing(root, ["GranDf_HA_images/val_test", "GranDf_HA_images/train", "images",
                            "image", "val_test", "coco_2017/train2017", "train2017", "val2017",
                            "../GranDf_HA_images/val_test", "../coco_2017/train2017", "."])


def _union_rles(rles: list[dict]) -> np.ndarray:
    ms = [rle_to_mask(r) for r in rles]
    return np.logical_or.reduce(ms) if ms else np.zeros((0, 0), bool)


def read_gcg(root: Path, fmt: str) -> EvalDataset:
    jsons = sorted(p for p in root.rglob("*.json") if p.is_file())
    pair_caps = [p for p in jsons if p.name.endswith("_gcg_coco_caption_gt.json")]
    key = "openpsg" if fmt == "openpsg" else "grandf"
    lists = [p for p in jsons if "gcg" in p.name.lower() and "coco" not in p.name
             and (("psg" in p.name.lower()) == (key == "openpsg"))]
    dirs = _gcg_dirs(root)
    items, skipped = [], 0
    if key == "grandf" and pair_caps:
        cap_path = _pick(pair_caps, ("val", "test"))
        mask_path = cap_path.with_name(cap_path.name.replace("_caption_gt", "_mask_gt"))
        caps, masks = _read_json(cap_path), _read_json(mask_path)
        by_img: dict = {}
        for a in sorted(masks.get("annotations", []), key=lambda a: a.get("id", 0)):
            by_img.setdefault(a["image_id"], []).append(a["segmentation"])
        cap_of = {a["image_id"]: a for a in caps.get("annotations", [])}
        for img in caps.get("images", []):
            iid = img["id"]
            path = _find_image(img.get("file_name", f"{iid}.jpg"), dirs)
            ann = cap_of.get(iid)
            if path is None or ann is None:
                skipped += 1
                continue
            segs = by_img.get(iid, [])
            labels = list(ann.get("labels", []))
            # Mask annotations of an image follow its labels in order (the GLaMM files pair
            # them so); extra masks without a label cannot be named and are left out.
            phrases = [(lab, (lambda s=s: rle_to_mask(s) if isinstance(s, dict)
                              else _union_rles(s)))
                       for lab, s in zip(labels, segs)]
            items.append(_gcg_item(str(iid), path, ann.get("caption", ""), phrases))
    elif lists:
        list_path = _pick(lists, ("val", "test"))
        for rec in _read_json(list_path):
            path = _find_image(rec["file_name"], dirs)
            if path is None:
                skipped += 1
                continue
            phrases = [(ph, (lambda g=g: _union_rles(g["rle_masks"])))
                       for ph, g in rec.get("groundings", {}).items()]
            items.append(_gcg_item(Path(rec["file_name"]).stem, path,
                                   str(rec.get("caption", "")).strip('"').strip(), phrases))
    else:
        hint = ("Expected GranDf annotations: annotations/val_test/val_gcg_coco_caption_gt.json "
                "(+ _mask_gt) or GranDf_HA_GCG_*.json" if key == "grandf"
                else "Expected OpenPsgGCG_val.json (GLaMM's OpenPSG GCG annotations)")
        raise DatasetError(f"No {key} annotations found under {root}.", hint)
    if not items:
        raise DatasetError(f"No images of the {key} annotations were found under {root}.",
                           "Put the images in images/ (or GranDf_HA_images/val_test/, "
                           "coco_2017/train2017/) next to the annotations.")
    return EvalDataset(key, root, items, skipped)


# --------------------------------------------------------------------------- dispatch
def detect_format(root: Path) -> str:
    if (root / "meta.json").is_file():
        return "synthetic"
    ann = root / "annotations"
    if list(ann.glob("instances_*.json")) or list(root.glob("instances_*.json")):
        return "coco"
    names = [p.name.lower() for p in root.rglob("*.json")]
    if any("psg" in n for n in names):
        return "openpsg"
    if any("gcg" in n for n in names):
        return "grandf"
    raise DatasetError(f"Cannot tell what kind of dataset {root} is.",
                       "Pass --format synthetic|coco|grandf|openpsg.")


def open_dataset(root: str | Path, fmt: str | None = None) -> EvalDataset:
    """Read a dataset folder in one of :data:`FORMATS` (detected when ``fmt`` is None)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Dataset folder not found: {root}",
                           "Give the folder that holds the annotations and images.")
    fmt = fmt or detect_format(root)
    if fmt == "synthetic":
        return read_synthetic(root)
    if fmt == "coco":
        return read_coco(root)
    if fmt in ("grandf", "openpsg"):
        return read_gcg(root, fmt)
    raise DatasetError(f"Unknown dataset format {fmt!r}.", f"Use one of {', '.join(FORMATS)}.")
