"""What every model-family adapter does: build inputs with the model's own processor and chat
template, and find the spans (vision grids, prompt text positions) from the processor's ids.

A family adapter only says how its placeholders become grids (:meth:`Adapter._grids`) and how to
call its processor; everything else (messages, the prompt's positions, media bookkeeping) is here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np

from tam_engine.core.errors import MediaError, ModelLoadError, TamError
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import Spans, VisionGrid, VisionKind
from tam_engine.inference.settings import GenerationSettings

_NORM_NAMES = ("norm", "final_layernorm", "ln_f", "final_layer_norm")
# Where wrappers keep the decoder proper (a causal LM inside a vision-language model).
_WRAPPERS = ("model", "language_model", "text_model", "decoder")

#: Media an adapter takes: one image, several images in one prompt, a video.
MediaSupport = Literal["image", "images", "video"]

# A string no chat template alters and no prompt contains: rendering the template with it in
# place of the prompt tells exactly where the prompt's characters land in the templated text.
_SENTINEL = "\u2063TAMPROMPT\u2063"


@dataclass
class Prepared:
    """Model inputs for ``generate`` plus where things are in the sequence.

    ``media`` are the user's items with ``frame_slot`` set to the map slot of each displayed
    frame.
    """

    model_inputs: dict[str, Any]
    spans: Spans
    media: list[MediaItem]
    input_ids: np.ndarray = field(repr=False)
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class SpanError(TamError):
    """The processor's output does not match what the adapter expects (a model-family mismatch)."""


def token_id(processor: Any, config: Any, *names: str) -> int | None:
    """The first integer id found under ``names`` on the processor, its tokenizer, or the config."""
    for obj in (processor, getattr(processor, "tokenizer", None), config,
                getattr(config, "text_config", None)):
        for name in names:
            value = getattr(obj, name, None) if obj is not None else None
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                return int(value)
    return None


class Adapter:
    """Base of the model-family adapters.

    Subclasses set ``family`` and ``model_types``, implement :meth:`_grids`, and may override
    :meth:`supports`, :meth:`_content`, :meth:`_processor_kwargs` and :meth:`final_norm`.
    """

    family: ClassVar[str] = "base"
    #: The config ``model_type`` values this adapter is chosen for.
    model_types: ClassVar[tuple[str, ...]] = ()
    #: The processor takes videos natively (otherwise a video's frames go in as images).
    native_video: ClassVar[bool] = False
    #: The prompt is rendered with the checkpoint's chat template (load_model checks it has one).
    uses_chat_template: ClassVar[bool] = True
    # What the family is, for ``tam models`` and README's model table (tam_engine.inference.
    # catalog): its name, example checkpoints, the media it takes, whether it tiles large images,
    # and a note on its map grid.
    title: ClassVar[str] = ""
    examples: ClassVar[tuple[str, ...]] = ()
    media: ClassVar[tuple[MediaSupport, ...]] = ("image", "images")
    tiling: ClassVar[bool] = False
    notes: ClassVar[str] = ""

    def __init__(self, processor: Any, config: Any) -> None:
        self.processor = processor
        self.config = config
        self.tokenizer = getattr(processor, "tokenizer", processor)

    # ------------------------------------------------------------------ selection
    @classmethod
    def supports(cls, config: Any) -> bool:
        return getattr(config, "model_type", None) in cls.model_types

    @classmethod
    def refusal(cls, config: Any) -> TamError | None:
        """Why this family cannot be explained with the installed libraries, checked before any
        weights are loaded; ``None`` when it can."""
        return None

    # ------------------------------------------------------------------ model parts
    def final_norm(self, model: Any) -> Any:
        """The decoder's final norm: its output is exactly what ``lm_head`` consumes.

        Looked up by its usual names on the decoder and on the modules a wrapper nests it in
        (Llama 4's language model holds the decoder under ``model``); failing that, a decoder
        whose only normalisation child is the final norm (LFM2 names it ``embedding_norm``).
        """
        decoders = [model.get_decoder()]
        for decoder in decoders:  # grows as wrappers reveal the decoders they hold
            for name in _NORM_NAMES:
                module = getattr(decoder, name, None)
                if module is not None:
                    return module
            for name in _WRAPPERS:
                inner = getattr(decoder, name, None)
                if hasattr(inner, "children") and all(inner is not d for d in decoders):
                    decoders.append(inner)
        for decoder in decoders:
            norms = [m for m in decoder.children() if type(m).__name__.lower().endswith("norm")]
            if len(norms) == 1:
                return norms[0]
        raise ModelLoadError(
            f"Cannot find the final norm of {type(decoders[0]).__name__}.",
            "This model family needs its own adapter; please report the model name.")

    def lm_head(self, model: Any) -> Any:
        return model.get_output_embeddings()

    # ------------------------------------------------------------------ inputs
    def _content(self, media: list[MediaItem]) -> list[dict[str, Any]]:
        """Chat content entries for the media, in the user's order."""
        out: list[dict[str, Any]] = []
        for item in media:
            if item.kind == "video" and self.native_video:
                out.append({"type": "video"})
            elif item.kind == "video":
                out.extend({"type": "image"} for _ in range(item.n_frames))
            else:
                out.append({"type": "image"})
        return out

    def _processor_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        return {}

    def _render(self, media: list[MediaItem], prompt: str) -> tuple[str, tuple[int, int]]:
        """The templated text and the character span of the prompt inside it."""
        from jinja2 import TemplateError

        def render(text: str) -> str:
            messages = [{"role": "user", "content": self._content(media) +
                         [{"type": "text", "text": text}]}]
            try:
                return self.processor.apply_chat_template(messages, add_generation_prompt=True,
                                                          tokenize=False)
            except (ValueError, TemplateError) as exc:
                # No template, several and none the default, or one that raises (jinja's
                # raise_exception, an undefined name, a syntax error).
                raise SpanError(f"The chat template cannot be applied: {exc}",
                                "Use a chat (instruction-tuned) checkpoint of this family, or add "
                                "its chat_template.jinja to the model folder.") from exc

        marked = render(_SENTINEL)
        i = marked.find(_SENTINEL)
        text = render(prompt)
        if i >= 0 and marked.count(_SENTINEL) == 1:
            if text == marked[:i] + prompt + marked[i + len(_SENTINEL):]:
                return text, (i, i + len(prompt))
        # The template changed the prompt (e.g. trimmed it): take its trimmed text where the
        # template put it, the last occurrence before the generation prompt.
        core = prompt.strip()
        j = text.rfind(core)
        if not core or j < 0:
            raise SpanError("The chat template does not keep the prompt text.",
                            "This model family needs its own adapter.")
        return text, (j, j + len(core))

    def prepare(self, media: list[MediaItem], prompt: str,
                settings: GenerationSettings | None = None) -> Prepared:
        """Build the model inputs and the spans for ``media`` and ``prompt``."""
        settings = settings or GenerationSettings()
        if not prompt.strip():
            raise TamError("The prompt is empty.", "Type a question or an instruction.")
        if not media:
            raise MediaError("No image or video was given.", "Add at least one image or video.")
        text, char_span = self._render(media, prompt)
        # Writable copies only where needed: torch warns on read-only arrays (decoded media).
        images = [np.require(f, requirements="W") for item in media
                  if not (item.kind == "video" and self.native_video) for f in item.frames]
        videos = [np.require(item.frames, requirements="W") for item in media
                  if item.kind == "video" and self.native_video]
        kwargs = self._processor_kwargs(settings)
        if any(f.shape[0] in (1, 3) for f in images):
            # An (H, W, 3) image 1 or 3 pixels high looks channels-first to the image
            # processor, which then reads it transposed (a 5 x 3 image got a 16 x 10 grid):
            # say the layout. Only then, as not every family's processor takes the argument.
            kwargs["input_data_format"] = "channels_last"
        if videos:
            kwargs.update(self._video_kwargs(media))
        inputs = self.processor(text=[text], images=self._images_arg(images),
                                videos=videos or None, return_tensors="pt", **kwargs)
        ids = inputs["input_ids"][0].cpu().numpy().astype(np.int64)
        prompt_pos = self._prompt_positions(text, char_span, ids)
        grids, slots = self._grids(media, inputs, ids)
        spans = Spans(grids=tuple(grids), prompt_positions=prompt_pos)
        self._check_disjoint(spans)
        out_media = [replace(item, frame_slot=slot) for item, slot in zip(media, slots)]
        return Prepared(model_inputs=dict(inputs), spans=spans, media=out_media, input_ids=ids,
                        text=text, meta={"family": self.family})

    def _video_kwargs(self, media: list[MediaItem]) -> dict[str, Any]:
        return {}

    def _images_arg(self, images: list[np.ndarray]) -> Any:
        """The images as the processor call takes them: one flat list (a family whose processor
        reads the nesting, e.g. one list per prompt, overrides this)."""
        return images or None

    # ------------------------------------------------------------------ spans
    def _prompt_positions(self, text: str, char_span: tuple[int, int], ids: np.ndarray
                          ) -> np.ndarray:
        """Positions of the prompt's tokens in the processed sequence.

        The templated text (placeholders not yet expanded) is tokenized with offsets; tokens
        overlapping the prompt's characters are the prompt. Media placeholders all come before
        the prompt, so the part of the sequence from the prompt on is the same in the expanded
        sequence; its ids are checked to be identical, then positions are counted from the end.
        """
        enc = self.tokenizer(text, return_offsets_mapping=True)
        unexp = np.asarray(enc["input_ids"], dtype=np.int64)
        offsets = enc["offset_mapping"]
        a, b = char_span
        idx = [i for i, (s, e) in enumerate(offsets) if e > s and s < b and e > a]
        if not idx:
            raise SpanError("The prompt produced no tokens.", "Use a longer prompt.")
        first = idx[0]
        tail = unexp.size - first
        if tail > ids.size or not np.array_equal(ids[ids.size - tail:], unexp[first:]):
            raise SpanError("Cannot locate the prompt's tokens in the processed sequence.",
                            "This model family needs its own adapter.")
        return np.asarray(idx, dtype=np.int64) + (ids.size - unexp.size)

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        """One grid per media item, and each item's frame->slot map."""
        raise NotImplementedError

    @staticmethod
    def _check_disjoint(spans: Spans) -> None:
        vis = spans.vision_positions
        if np.intersect1d(vis, spans.prompt_positions).size or np.unique(vis).size != vis.size:
            raise SpanError("Vision and prompt positions overlap.",
                            "This model family needs its own adapter.")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _take(positions: np.ndarray, start: int, n: int, what: str) -> np.ndarray:
        if start + n > positions.size:
            raise SpanError(f"The processor produced fewer {what} tokens than its grids need.",
                            "This model family needs its own adapter.")
        return positions[start:start + n]

    @staticmethod
    def _square(n: int) -> tuple[int, int]:
        side = math.isqrt(n)
        if side * side != n:
            raise SpanError(f"{n} vision tokens per image do not form a square grid.",
                            "This model family needs its own adapter.")
        return side, side

    def _frames_as_images(self, media: list[MediaItem], per_image: list[tuple[int, int]],
                          positions: np.ndarray) -> tuple[list[VisionGrid], list[np.ndarray]]:
        """Grids when every frame of every item went in as one image of ``per_image[j]`` cells;
        a video's frames are gathered into one grid of kind "video" with one slot per frame."""
        grids, slots, j, start = [], [], 0, 0
        for mi, item in enumerate(media):
            n = item.n_frames
            shapes = per_image[j:j + n]
            if len(set(shapes)) != 1:
                raise SpanError("The frames of one video were processed at different sizes.",
                                "This model family needs its own adapter.")
            h, w = shapes[0]
            pos = self._take(positions, start, n * h * w, "vision")
            kind: VisionKind = "video" if item.kind == "video" else "image"
            grids.append(VisionGrid(kind=kind, media_index=mi, t=n, h=h, w=w, positions=pos))
            slots.append(np.arange(n, dtype=np.int64))
            j += n
            start += n * h * w
        if start != positions.size:
            raise SpanError("The processor produced more vision tokens than its grids need.",
                            "This model family needs its own adapter.")
        return grids, slots
