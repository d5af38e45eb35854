"""What watches ``generate``: the final-norm hook that records the hidden states, and the
stopping criterion that streams tokens and checks for cancellation between steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tam_engine.inference.capture.detokenise import IncrementalDetokenizer

__all__ = ["CallbackFailed", "FinalHiddenHook", "OnToken", "ShouldStop", "StepWatch"]

OnToken = Callable[[int, str], None]
ShouldStop = Callable[[], bool]


class FinalHiddenHook:
    """Records every output of one module (the decoder's final norm) during generation.

    Use as a context manager, or call :meth:`release`; either way the hook is removed and the
    recorded tensors are dropped unless taken with :meth:`take`.
    """

    def __init__(self, module: Any) -> None:
        self.module = module
        self.chunks: list[Any] = []
        self._handle = module.register_forward_hook(self._on_forward)

    def _on_forward(self, module: Any, args: Any, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        # Batch of one: (1, n, d) -> (n, d). detach: generation runs without grad anyway.
        self.chunks.append(out.detach()[0])

    def take(self) -> Any:
        """All recorded states concatenated along the sequence, ``(n_total, d)``."""
        import torch

        if not self.chunks:
            raise RuntimeError("the hooked module never ran")
        out = torch.cat(self.chunks, dim=0)
        self.chunks = []
        return out

    def release(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.chunks = []

    def __enter__(self) -> FinalHiddenHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class CallbackFailed(Exception):
    """An exception of ``on_token``/``should_stop`` on its way out of ``generate``, so that
    capture re-raises it as it was instead of reading a ``MemoryError`` of the caller's code
    as "the run does not fit in memory"."""

    def __init__(self, original: Exception) -> None:
        super().__init__(repr(original))
        self.original = original


class StepWatch:
    """Stopping criterion: streams each new token and stops when the user asks."""

    def __init__(self, tokenizer: Any, prompt_ids: list[int], on_token: OnToken | None,
                 should_stop: ShouldStop | None) -> None:
        self.det = IncrementalDetokenizer(tokenizer, prompt_ids)
        self.on_token = on_token
        self.should_stop = should_stop
        self.step = 0
        self.cancelled = False
        self._answers: dict[tuple[Any, bool], Any] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        try:
            if self.on_token is not None:
                self.on_token(self.step, self.det.push(int(input_ids[0, -1])))
            stop = self.should_stop is not None and self.should_stop()
        except Exception as exc:  # the caller's own error, not the model's: carried unchanged
            raise CallbackFailed(exc) from exc
        self.step += 1
        if stop:
            self.cancelled = True
        key = (input_ids.device, self.cancelled)
        if key not in self._answers:  # generate only reads the answer: reuse it every step
            self._answers[key] = torch.full((input_ids.shape[0],), self.cancelled,
                                            dtype=torch.bool, device=input_ids.device)
        return self._answers[key]
