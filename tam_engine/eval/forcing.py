"""The model side of the faithfulness metrics: the probability of each answer token for
perturbed copies of an item's image, the answer teacher-forced (one forward pass per image,
nothing generated).

Each perturbed image goes through the adapter's own ``prepare`` (the processor resizes and
normalises it as it did the original), its ids extended by the answer as
:mod:`tam_engine.inference.capture.given` does, and the images of a batch are concatenated
along the first dimension of every input tensor (one row per image for the text inputs, one
block per image for the vision inputs). Nothing is trusted unchecked:

- every perturbed image must give the prompt ids of the original (same size, same tokens);
- the original image's probabilities must be those the generation gave its own tokens;
- the last image of the first batch must give, alone, what it gave in the batch (so batching
  a family's inputs cannot silently mix images up).

A failed check raises :class:`~tam_engine.eval.faithfulness.FaithfulnessError`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tam_engine.core.errors import TamError
from tam_engine.core.explanation import Explanation
from tam_engine.eval.faithfulness import FaithfulnessError, ProbFactory, ProbFn

if TYPE_CHECKING:
    from tam_engine.inference.loading import LoadedModel
    from tam_engine.inference.settings import GenerationSettings

#: How far (absolute probability) a teacher-forced forward pass may be from the generation's
#: own probabilities, and a batched pass from a single one: float32 agrees to ~1e-6; bfloat16
#: kernels differ by a few hundredths; a mixed-up image by far more.
TOLERANCE = 0.05


def baseline_colour(frame: np.ndarray) -> np.ndarray:
    """The deletion/insertion baseline: the image's per-channel mean colour, as uint8."""
    return np.rint(np.asarray(frame, np.float64).reshape(-1, 3).mean(axis=0)).astype(np.uint8)


def compose(frame: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``(n, H, W, 3)`` images: ``frame`` where ``kept``, its baseline colour elsewhere."""
    base = baseline_colour(frame)
    return np.where(np.asarray(kept, bool)[..., None], np.asarray(frame, np.uint8)[None],
                    base[None, None, None, :]).astype(np.uint8)


def model_prob_factory(loaded: LoadedModel, settings: GenerationSettings, prompt: str
                       ) -> ProbFactory:
    """A :data:`ProbFactory` that re-runs ``loaded`` on the item's perturbed image."""

    def factory(item: Any, expl: Explanation) -> ProbFn:
        return _ForcedProbs(loaded, settings, expl.meta.get("prompt") or prompt, expl)

    return factory


class _ForcedProbs:
    def __init__(self, loaded: LoadedModel, settings: GenerationSettings, prompt: str,
                 expl: Explanation) -> None:
        self.loaded, self.settings, self.prompt = loaded, settings, prompt
        self.media = expl.media[0]
        self.frame = np.asarray(self.media.frames[0], np.uint8)
        ids = np.asarray(expl.ids, np.int64)
        self.prompt_ids = ids[:expl.input_len]
        self.answer = ids[expl.input_len:]
        self.seq = ids
        # The generation's probability of each token it chose (where the top candidate is it).
        c = expl.candidates
        self.expected = None
        if c is not None and len(c.ids) == len(self.answer):
            own = np.asarray(c.ids)[:, 0] == self.answer
            self.expected = (own, np.asarray(c.probs, np.float64)[:, 0])
        self.verified = False

    def __call__(self, kept: np.ndarray) -> np.ndarray:
        images = compose(self.frame, kept)
        probs = self._forward(images)
        if not self.verified:
            self._verify(kept, images, probs)
            self.verified = True
        return probs

    def _inputs(self, image: np.ndarray) -> dict[str, Any]:
        from tam_engine.inference.capture.given import forced_inputs

        media = replace(self.media, frames=image[None])
        prepared = self.loaded.adapter.prepare([media], self.prompt, self.settings)
        if not np.array_equal(np.asarray(prepared.input_ids).reshape(-1), self.prompt_ids):
            raise FaithfulnessError(
                "A perturbed image did not give the prompt tokens of the original, so the "
                "answer cannot be teacher-forced at the same positions.",
                "Faithfulness needs a model whose image tokens depend only on the image size.")
        try:
            return forced_inputs(prepared, self.seq[:-1], self.loaded.device,
                                  self.loaded.dtype)
        except TamError as exc:
            raise FaithfulnessError(
                f"Faithfulness needs teacher forcing, which this model does not support: "
                f"{exc.message}", "Run tam eval without --faithfulness for this model.") from exc

    def _forward(self, images: np.ndarray) -> np.ndarray:
        import torch

        from tam_engine.inference.capture.exclusive import model_in_use

        parts = [self._inputs(im) for im in images]
        batch: dict[str, Any] = {}
        for key, first in parts[0].items():
            if isinstance(first, torch.Tensor):
                batch[key] = torch.cat([p[key] for p in parts], 0) if len(parts) > 1 else first
            elif all(p[key] == first for p in parts[1:]):
                batch[key] = first
            else:
                raise FaithfulnessError(f"The model input {key!r} differs between images and "
                                        "cannot be batched.", "Use --faithfulness-batch 1.")
        T = int(self.answer.size)
        ids = torch.as_tensor(self.answer)
        with model_in_use(self.loaded.model, None), torch.no_grad():
            out = self.loaded.model(**batch, use_cache=False, logits_to_keep=T)
            logits = out.logits[:, -T:, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            idx = ids.to(logp.device)[None, :, None].expand(logp.shape[0], T, 1)
            return logp.gather(2, idx)[..., 0].exp().double().cpu().numpy()

    def _verify(self, kept: np.ndarray, images: np.ndarray, probs: np.ndarray) -> None:
        if self.expected is not None and kept[0].all():
            own, want = self.expected
            diff = np.abs(probs[0] - want)[own]
            if diff.size and float(diff.max()) > TOLERANCE:
                raise FaithfulnessError(
                    "Teacher forcing the generated answer does not reproduce the generation's "
                    f"probabilities (off by up to {float(diff.max()):.3f}).",
                    "Faithfulness cannot be measured reliably for this model and dtype; try "
                    "--dtype float32.")
        if len(images) > 1:
            alone = self._forward(images[-1:])[0]
            diff = np.abs(alone - probs[-1])
            if float(diff.max()) > TOLERANCE:
                raise FaithfulnessError(
                    "This model family's inputs give other probabilities batched than alone "
                    f"(off by up to {float(diff.max()):.3f}).", "Use --faithfulness-batch 1.")
