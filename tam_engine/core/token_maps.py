"""The maps of a set of explained tokens (all answer tokens, or all prompt tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from tam_engine.core.errors import TamError

if TYPE_CHECKING:
    from tam_engine.core.stages import StageSource

TokenKind = Literal["answer", "prompt"]
FloatStage = Literal["raw", "eci", "filtered"]
FLOAT_STAGES: tuple[FloatStage, ...] = ("raw", "eci", "filtered")

# A whole float stage is kept once computed when it is this small (every explanation of one
# image); a long video's stages (170 MB each at 128 slots x 1,024 tokens) are produced again.
KEEP_STAGE_BYTES = 32 * 2**20


class MapRows(Protocol):
    """uint8 maps read a row at a time (an explanation file's chunked store)."""

    shape: tuple[int, int]

    def rows(self, idx: np.ndarray) -> np.ndarray: ...

    def full(self) -> np.ndarray: ...


class StagesUnavailable(TamError):
    """The float stages were not kept (a long explanation reopened from its file)."""


class TokenMaps:
    """Maps of a set of explained tokens (all answer tokens, or all prompt tokens).

    Vision arrays are ``(N, n_vision)``: one row per token, columns in the flattened vision
    order of :attr:`Explanation.grids`.

    ``maps`` (uint8, what views and exports show) is always there. The float stages ``raw``,
    ``eci`` and ``filtered`` are either given as arrays or produced on demand, bit-identical to
    an eager computation, from a :class:`~tam_engine.core.stages.StageSource`; an explanation
    reopened from a file saved without its stage source has none, and asking for one raises
    :class:`StagesUnavailable` (never an approximation).

    ``relevance`` is ``(N, C)`` with ``C = n_prompt + n_answer`` text columns (prompt tokens then
    answer tokens): the clipped logit of the token's class at each context token's relevant
    position (section 3 of the method). ``context`` marks which columns are this token's context.
    ``norm_lo``/``norm_hi`` are the joint min/max used to normalise vision and text together.
    """

    #: The public attributes, in the order the class had them as a dataclass (what comparing
    #: two sets of maps compares).
    FIELDS = ("kind", "token_ids", "positions", "texts", "raw", "eci", "filtered", "maps",
              "alpha", "relevance", "context", "norm_lo", "norm_hi")

    def __init__(self, kind: TokenKind, token_ids: np.ndarray, positions: np.ndarray,
                 texts: list[str], maps: np.ndarray | MapRows, alpha: np.ndarray,
                 relevance: np.ndarray, context: np.ndarray, norm_lo: np.ndarray,
                 norm_hi: np.ndarray, raw: np.ndarray | None = None,
                 eci: np.ndarray | None = None, filtered: np.ndarray | None = None,
                 source: StageSource | None = None) -> None:
        self.kind = kind
        self.token_ids = token_ids
        self.positions = positions
        self.texts = texts
        self._maps = maps
        self.alpha = alpha
        self.relevance = relevance
        self.context = context
        self.norm_lo = norm_lo
        self.norm_hi = norm_hi
        self._stages: dict[str, np.ndarray] = {
            k: v for k, v in (("raw", raw), ("eci", eci), ("filtered", filtered))
            if v is not None}
        self.source = source
        #: visual_strength() as saved in a chunked file (read before the maps themselves).
        self.stored_strength: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.token_ids.size)

    def __repr__(self) -> str:
        return f"TokenMaps(kind={self.kind!r}, n={len(self)}, n_vision={self.n_vision})"

    # ------------------------------------------------------------------ final maps
    @property
    def n_vision(self) -> int:
        return int(self._maps.shape[1])

    @property
    def maps(self) -> np.ndarray:
        """``(N, n_vision)`` uint8, all of them (read from the file on first use if needed)."""
        if not isinstance(self._maps, np.ndarray):
            self._maps = self._maps.full()
        return self._maps

    @property
    def maps_loaded(self) -> bool:
        return isinstance(self._maps, np.ndarray)

    @property
    def maps_shape(self) -> tuple[int, ...]:
        """The maps' shape, known without reading them from the file."""
        return tuple(int(n) for n in self._maps.shape)

    def stages_held(self) -> dict[str, np.ndarray]:
        """The float stages held in memory now (the others are derived on demand)."""
        return dict(self._stages)

    def map_rows(self, idx) -> np.ndarray:
        """Rows ``idx`` of the uint8 maps, without reading the others from the file."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        if isinstance(self._maps, np.ndarray):
            return self._maps[idx]
        n = self._maps.shape[0]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"token index out of range for {n} tokens")
        return self._maps.rows(np.where(idx < 0, idx + n, idx))

    # ------------------------------------------------------------------ float stages
    @property
    def has_float_stages(self) -> bool:
        return len(self._stages) == 3 or self.source is not None

    def _require(self, stage: str) -> None:
        if stage not in self._stages and self.source is None:
            raise StagesUnavailable(
                f"the {stage} maps of this explanation were not saved (it was saved without "
                "its score table, which is kept only when small).",
                "Explain the media again to see or export the raw, ECI and filtered maps; the "
                "final maps are all there.")

    def stage(self, stage: FloatStage) -> np.ndarray:
        """A whole float stage, ``(N, n_vision)`` float32."""
        self._require(stage)
        if stage in self._stages:
            return self._stages[stage]
        assert self.source is not None
        out = self.source.stage(stage)
        if out.nbytes <= KEEP_STAGE_BYTES:
            self._stages[stage] = out
        return out

    def stage_rows(self, stage: str, idx) -> np.ndarray:
        """Rows ``idx`` of a stage (``raw``, ``eci``, ``filtered`` or ``final``), computing
        only the blocks they fall in."""
        if stage == "final":
            return self.map_rows(idx)
        if stage not in FLOAT_STAGES:
            raise ValueError(f"stage must be raw, eci, filtered or final, not {stage!r}")
        self._require(stage)
        idx = np.asarray(idx, np.int64).reshape(-1)
        if stage in self._stages:
            return self._stages[stage][idx]
        assert self.source is not None
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"token index out of range for {n} tokens")
        return self.source.rows(stage, np.where(idx < 0, idx + n, idx))

    @property
    def raw(self) -> np.ndarray:
        return self.stage("raw")

    @property
    def eci(self) -> np.ndarray:
        return self.stage("eci")

    @property
    def filtered(self) -> np.ndarray:
        return self.stage("filtered")

    # ------------------------------------------------------------------ derived
    def normalised_relevance(self, k: int) -> np.ndarray:
        """Context relevances of token ``k`` on the joint [0, 1] scale (NaN outside context)."""
        lo, hi = float(self.norm_lo[k]), float(self.norm_hi[k])
        out = np.full(self.relevance.shape[1], np.nan, dtype=np.float32)
        ctx = self.context[k]
        if hi > lo:
            out[ctx] = np.clip((self.relevance[k, ctx] - lo) / (hi - lo), 0.0, 1.0)
        else:
            out[ctx] = 0.0
        return out

    def visual_strength(self) -> np.ndarray:
        """Mean of each token's final map in [0, 1]: how much visual evidence it shows."""
        if self.n_vision == 0:
            return np.zeros(len(self), np.float32)
        if self.stored_strength is not None and not self.maps_loaded:
            return self.stored_strength.copy()  # saved with the file: no need to read maps
        maps = self.maps
        out = np.empty(len(self), np.float32)
        for s in range(0, len(self), 64):  # blocks: no float copy of every map at once
            out[s:s + 64] = maps[s:s + 64].astype(np.float32).mean(axis=1) / 255.0
        return out
