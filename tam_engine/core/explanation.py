"""The result of explaining one generation: a plain object with its own save/load."""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.errors import ExplanationFileError
from tam_engine.core.explanation_file import (
    GEOMETRY_VERSION,
    PLAIN_GEOMETRY_VERSION,
    check_archive,
    check_explanation,
    check_path,
    header_fields,
    json_default,
    not_an_explanation,
    read_header,
)
from tam_engine.core.explanation_store import load_chunked, save_chunked, wants_chunked
from tam_engine.core.inputs import Candidates
from tam_engine.core.media import MediaItem
from tam_engine.core.placement import (
    DEFAULT_LAYER,
    Layer,
    PlacedMap,
    check_layer,
    natural_size,
    place,
    strength,
)
from tam_engine.core.spans import FULL_BOX, VisionGrid, grid_slices
from tam_engine.core.token_maps import TokenKind, TokenMaps
from tam_engine.core.tokens import special_from_texts, special_mask

Stage = Literal["raw", "eci", "filtered", "final"]


@dataclass
class TamOptions:
    """Engine switches. ``eci`` and ``filter`` exist for ablations."""

    eci: bool = True
    filter: bool = True
    kernel_size: int = 3
    explain_prompt: bool = True

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be a positive odd number")


_TOKEN_ARRAYS = ("token_ids", "positions", "raw", "eci", "filtered", "maps", "alpha",
                 "relevance", "context", "norm_lo", "norm_hi")


@dataclass
class Explanation:
    """Everything needed to show and export an explanation, without the model."""

    ids: np.ndarray
    input_len: int
    token_texts: list[str]
    grids: list[VisionGrid]
    prompt_positions: np.ndarray
    answer: TokenMaps
    prompt: TokenMaps | None
    candidates: Candidates | None
    options: TamOptions
    media: list[MediaItem] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    # (L + T,) bool, one entry per id: the tokenizer's special tokens (TamInputs.is_special).
    # Left out (hand-built explanations, files saved before it was recorded), it is guessed
    # from token_texts, conservatively (tam_engine.core.tokens.special_from_texts).
    is_special: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)

    def __post_init__(self) -> None:
        self.is_special = special_mask(self.is_special, self.token_texts)

    # ------------------------------------------------------------------ basic facts
    @property
    def n_answer(self) -> int:
        return len(self.answer)

    @property
    def n_vision(self) -> int:
        return sum(g.size for g in self.grids)

    @property
    def answer_texts(self) -> list[str]:
        return list(self.answer.texts)

    @property
    def answer_text(self) -> str:
        return "".join(self.answer.texts)

    @property
    def prompt_texts(self) -> list[str]:
        return [self.token_texts[p] for p in self.prompt_positions]

    @property
    def text_columns(self) -> list[str]:
        """Texts of the ``relevance`` columns: prompt tokens then answer tokens."""
        return self.prompt_texts + self.answer_texts

    def special(self, kind: TokenKind = "answer") -> np.ndarray:
        """``(N,)`` bool: which tokens of ``kind`` are the tokenizer's special tokens."""
        return self.is_special[self.tokens(kind).positions]

    def strongest_token(self, kind: TokenKind = "answer") -> int:
        """The token with the strongest visual evidence (the largest mean of its map), the
        tokenizer's special tokens left out unless there is nothing else; 0 without tokens.
        Where a view opens, so that it starts on a map that shows something."""
        tm = self.tokens(kind)
        if len(tm) == 0:
            return 0
        strength = tm.visual_strength().astype(np.float64)
        special = self.special(kind)
        if not special.all():
            strength = np.where(special, -1.0, strength)
        return int(np.argmax(strength))

    def tokens(self, kind: TokenKind = "answer") -> TokenMaps:
        if kind == "answer":
            return self.answer
        if self.prompt is None:
            raise ValueError("this explanation has no prompt-token maps")
        return self.prompt

    @property
    def grid_slices(self) -> list[slice]:
        """Each grid's columns in the ``(N, n_vision)`` arrays, in :attr:`grids` order."""
        return grid_slices(self.grids)

    # ------------------------------------------------------------------ maps
    def vision_vector(self, k: int, kind: TokenKind = "answer", stage: Stage = "final"
                      ) -> np.ndarray:
        """Token ``k``'s vision scores at ``stage``; only its block is read or computed."""
        return self.tokens(kind).stage_rows(stage, [k])[0]

    def grid_maps(self, k: int, kind: TokenKind = "answer", stage: Stage = "final"
                  ) -> list[np.ndarray]:
        """Token ``k``'s maps, one ``(t, h, w)`` array per grid."""
        vec = self.vision_vector(k, kind, stage)
        return [vec[s].reshape(g.t, g.h, g.w) for g, s in zip(self.grids, self.grid_slices)]

    def grid_for_media(self, media_index: int) -> int:
        for i, g in enumerate(self.grids):
            if g.media_index == media_index:
                return i
        raise KeyError(f"no vision grid for media {media_index}")

    def _raw_slot(self, media_index: int, frame: int) -> int:
        """The slot stored for displayed ``frame`` (a frame past the last shows the last one);
        0 without stored media. Each grid clamps it to its own ``t``."""
        if self.media and 0 <= media_index < len(self.media):
            slots = self.media[media_index].frame_slot
            return int(slots[min(max(int(frame), 0), slots.size - 1)])
        return 0

    def _raw_slots(self, media_index: int, n_frames: int) -> np.ndarray:
        """:meth:`_raw_slot` of frames ``0 .. n_frames - 1`` at once."""
        if self.media and 0 <= media_index < len(self.media):
            slots = np.asarray(self.media[media_index].frame_slot, np.int64)
            return slots[np.minimum(np.arange(n_frames), slots.size - 1)]
        return np.zeros(n_frames, np.int64)

    def slot_of_frame(self, media_index: int, frame: int) -> int:
        """The temporal slot of media ``media_index``'s first grid shown on displayed ``frame``:
        a frame past the last shows the last one, a slot past the grid its last slot, and
        without stored media every frame shows slot 0."""
        slot = self._raw_slot(media_index, frame)
        grids = [g for g in self.grids if g.media_index == media_index]
        return min(slot, grids[0].t - 1) if grids else slot

    def frame_map(self, k: int, media_index: int = 0, frame: int = 0,
                  kind: TokenKind = "answer", stage: Stage = "final") -> np.ndarray:
        """The ``(h, w)`` map of token ``k`` shown on displayed ``frame`` of a media item."""
        maps = self.grid_maps(k, kind, stage)[self.grid_for_media(media_index)]
        return maps[self.slot_of_frame(media_index, frame)]

    def combined_vector(self, indices: list[int] | np.ndarray, how: str = "mean",
                        kind: TokenKind = "answer") -> np.ndarray:
        """One uint8 vision vector for a phrase: mean or max of the tokens' filtered maps."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise ValueError("choose at least one token")
        tm = self.tokens(kind)
        if how == "max" and not tm.has_float_stages:
            # floor(255 * max f) = max floor(255 * f): the uint8 maps give it exactly.
            return tm.map_rows(idx).max(axis=0)
        rows = tm.stage_rows("filtered", idx).astype(np.float64)
        if how == "mean":
            v = rows.mean(axis=0)
        elif how == "max":
            v = rows.max(axis=0)
        else:
            raise ValueError(f"how must be 'mean' or 'max', not {how!r}")
        return (np.clip(v, 0.0, 1.0) * 255.0).astype(np.uint8)

    def combined_grid_maps(self, indices, how: str = "mean", kind: TokenKind = "answer"
                           ) -> list[np.ndarray]:
        vec = self.combined_vector(indices, how, kind)
        return [vec[s].reshape(g.t, g.h, g.w) for g, s in zip(self.grids, self.grid_slices)]

    def selection_grid_maps(self, tokens: Sequence[int], how: str = "mean",
                            kind: TokenKind = "answer") -> list[np.ndarray]:
        """What a selection shows, one ``(t, h, w)`` array per grid: one token's final maps,
        or the phrase maps (:meth:`combined_grid_maps`) of several."""
        toks = [int(k) for k in tokens]
        if len(toks) == 1:
            return self.grid_maps(toks[0], kind)
        return self.combined_grid_maps(toks, how, kind)

    def frame_strengths(self, tokens: Sequence[int], media_index: int = 0, how: str = "mean",
                        kind: TokenKind = "answer", n_frames: int | None = None,
                        layer: Layer = DEFAULT_LAYER) -> np.ndarray:
        """Mean of the selection's placed ``layer`` on each of ``n_frames`` displayed frames
        (default: the stored media item's), in [0, 1] (:func:`core.placement.strength`)."""
        maps = self.selection_grid_maps(tokens, how, kind)
        if n_frames is None:
            n_frames = self.media[media_index].n_frames if media_index < len(self.media) else 1
        idx = self.item_grids(media_index)
        if not idx:
            raise KeyError(f"no vision grid for media {media_index}")
        grids = [self.grids[i] for i in idx]
        if len(idx) == 1 and grids[0].box == FULL_BOX:
            # One grid over the whole frame (every video of the Qwen families): each slot's
            # strength is its map's mean, for every layer; all slots at once (a long video has
            # hundreds of frames and this runs on every token switch).
            check_layer(layer)
            g, m = grids[0], np.asarray(maps[idx[0]])
            per = m.reshape(g.t, -1).mean(axis=1) / 255.0 if m.size else np.zeros(g.t)
            slots = self._raw_slots(media_index, n_frames)
            return per[np.minimum(slots, g.t - 1)].astype(np.float32)
        per_slot: dict[int, float] = {}
        out = np.zeros(n_frames, np.float64)
        for f in range(n_frames):
            slot = self._raw_slot(media_index, f)
            if slot not in per_slot:
                per_slot[slot] = strength(
                    grids, [maps[i][min(slot, self.grids[i].t - 1)] for i in idx], layer)
            out[f] = per_slot[slot]
        return out.astype(np.float32)

    # ------------------------------------------------------------------ placed maps
    def item_grids(self, media_index: int) -> list[int]:
        """Indices of media ``media_index``'s grids (tiles, thumbnail, ...), in sequence order."""
        return [i for i, g in enumerate(self.grids) if g.media_index == media_index]

    def has_tiles(self, media_index: int | None = None) -> bool:
        """Whether a media item (default: any) was seen as tiles, so layers differ."""
        return any(g.role == "tile" for g in self.grids
                   if media_index is None or g.media_index == media_index)

    def frame_size(self, media_index: int = 0, width: int = 448) -> tuple[int, int]:
        """``(W, H)`` of the item's frames; without stored media, ``width`` wide at the aspect
        ratio its grids imply."""
        if 0 <= media_index < len(self.media):
            return self.media[media_index].size
        return natural_size([self.grids[i] for i in self.item_grids(media_index)], width)

    def place(self, grid_maps: Sequence[np.ndarray], media_index: int = 0, frame: int = 0,
              layer: Layer = DEFAULT_LAYER, size: tuple[int, int] | None = None,
              as_float: bool = False) -> PlacedMap:
        """``grid_maps`` (one ``(t, h, w)`` array per grid of :attr:`grids`) on displayed
        ``frame`` of a media item, placed in its original frame at ``size = (W, H)`` (default:
        the frame's own size) as ``layer`` (:mod:`tam_engine.core.placement`)."""
        idx = self.item_grids(media_index)
        if not idx:
            raise KeyError(f"no vision grid for media {media_index}")
        slot = self._raw_slot(media_index, frame)
        maps = [grid_maps[i][min(slot, self.grids[i].t - 1)] for i in idx]
        return place([self.grids[i] for i in idx], maps, layer,
                     size or self.frame_size(media_index), as_float)

    def placed_map(self, k: int, media_index: int = 0, frame: int = 0,
                   kind: TokenKind = "answer", stage: Stage = "final",
                   layer: Layer = DEFAULT_LAYER, size: tuple[int, int] | None = None
                   ) -> PlacedMap:
        """Token ``k``'s map in the original frame (see :meth:`place`)."""
        return self.place(self.grid_maps(k, kind, stage), media_index, frame, layer, size)

    def placed_selection(self, tokens: Sequence[int], media_index: int = 0, frame: int = 0,
                         how: str = "mean", kind: TokenKind = "answer",
                         layer: Layer = DEFAULT_LAYER, size: tuple[int, int] | None = None,
                         as_float: bool = False) -> PlacedMap:
        """What a selection (:meth:`selection_grid_maps`) shows, in the original frame."""
        return self.place(self.selection_grid_maps(tokens, how, kind), media_index, frame,
                          layer, size, as_float)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write one ``.tam.npz`` file atomically (no pickles; arrays + a JSON header).

        An explanation that :meth:`load` would refuse (NaN maps, arrays that disagree) is not
        written: an :class:`ExplanationFileError` says why. A long explanation (float stages or
        frames above a few tens of MB) is written in the chunked layout (format 3,
        :mod:`tam_engine.core.explanation_store`); a short one in formats 1-2, which older
        releases open too.
        """
        path = Path(path)
        try:
            check_explanation(self)
        except ValueError as exc:
            raise ExplanationFileError(f"This explanation cannot be saved: {exc}.",
                                       "Explain the media again; if it happens again, the "
                                       "model's weights or dtype may be broken.") from exc
        if wants_chunked(self):
            return save_chunked(self, path)
        arrays: dict[str, np.ndarray] = {
            "ids": self.ids.astype(np.int64),
            "prompt_positions": self.prompt_positions.astype(np.int64),
            # Optional in the format: files without it still open (see load).
            "is_special": self.is_special.astype(bool),
        }
        for gi, g in enumerate(self.grids):
            arrays[f"grid{gi}_positions"] = g.positions
        for tm in (self.answer, self.prompt):
            if tm is None:
                continue
            for name in _TOKEN_ARRAYS:
                arrays[f"{tm.kind}_{name}"] = np.asarray(getattr(tm, name))
        if self.candidates is not None:
            arrays["cand_ids"] = self.candidates.ids
            arrays["cand_logits"] = self.candidates.logits
            arrays["cand_probs"] = self.candidates.probs
        media_meta = []
        for mi, m in enumerate(self.media):
            arrays[f"media{mi}_frames"] = np.asarray(m.frames)
            arrays[f"media{mi}_frame_slot"] = m.frame_slot
            arrays[f"media{mi}_timestamps"] = m.timestamps
            media_meta.append({"kind": m.kind, "path": m.path, "fps": m.fps})
        plain = all(g.box == FULL_BOX and g.role == "full" for g in self.grids)
        header = header_fields(self, PLAIN_GEOMETRY_VERSION if plain else GEOMETRY_VERSION,
                               media_meta)
        text = json.dumps(header, default=json_default)
        arrays["header"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Explanation:
        """Read a ``.tam.npz`` file written by :meth:`save`.

        Raises
        ------
        ExplanationFileError
            The file is missing, is not an explanation, is damaged, or was written by a newer
            version (also a ``ValueError``, for callers that catch that).
        """
        path = Path(path)
        check_path(path)
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
            if magic != b"PK\x03\x04":  # every .npz is a zip archive
                raise not_an_explanation(path, "not an .npz archive")
            check_archive(path)
            npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError,
                RuntimeError) as exc:
            if isinstance(exc, ExplanationFileError):
                raise
            if isinstance(exc, zipfile.BadZipFile):
                raise ExplanationFileError(
                    f"{path.name} is damaged or truncated ({exc}).",
                    "Save the explanation again, or explain the media again.") from exc
            raise not_an_explanation(path, str(exc)) from exc
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise not_an_explanation(path, "not an .npz archive")
        with npz:
            header = read_header(npz, path)
            try:
                if int(header.get("version", 0)) >= 3:
                    expl = load_chunked(path, header, cls, TamOptions)
                else:
                    expl = cls._from_npz(npz, header)
                check_explanation(expl)
                return expl
            except (KeyError, ValueError, TypeError, AttributeError, IndexError, OSError,
                    EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
                raise ExplanationFileError(
                    f"{path.name} is damaged: {type(exc).__name__}: {exc}",
                    "Save the explanation again, or explain the media again.") from exc

    @classmethod
    def _from_npz(cls, npz, header: dict) -> Explanation:
        grids = [
            VisionGrid(kind=gm["kind"], media_index=gm["media_index"], t=gm["t"], h=gm["h"],
                       w=gm["w"], positions=npz[f"grid{gi}_positions"],
                       box=tuple(gm.get("box", FULL_BOX)), role=gm.get("role", "full"))
            for gi, gm in enumerate(header["grids"])
        ]

        def token_maps(kind: TokenKind, texts: list[str]) -> TokenMaps:
            return TokenMaps(kind=kind, texts=list(texts),
                             **{n: npz[f"{kind}_{n}"] for n in _TOKEN_ARRAYS})

        answer = token_maps("answer", header["answer_texts"])
        prompt = (None if header["prompt_texts"] is None
                  else token_maps("prompt", header["prompt_texts"]))
        cands = None
        if header["cand_texts"] is not None:
            cands = Candidates(ids=npz["cand_ids"], logits=npz["cand_logits"],
                               probs=npz["cand_probs"], texts=header["cand_texts"])
        media = [
            MediaItem(kind=mm["kind"], path=mm["path"], frames=npz[f"media{mi}_frames"],
                      frame_slot=npz[f"media{mi}_frame_slot"],
                      timestamps=npz[f"media{mi}_timestamps"], fps=float(mm["fps"]))
            for mi, mm in enumerate(header["media"])
        ]
        return cls(ids=npz["ids"], input_len=int(header["input_len"]),
                   token_texts=list(header["token_texts"]), grids=grids,
                   prompt_positions=npz["prompt_positions"], answer=answer, prompt=prompt,
                   candidates=cands, options=TamOptions(**header["options"]), media=media,
                   meta=dict(header.get("meta") or {}),
                   # Files saved before the mask was recorded get the conservative guess.
                   is_special=(npz["is_special"] if "is_special" in npz.files
                               else special_from_texts(header["token_texts"])))
