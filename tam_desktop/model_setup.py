"""Model > Model Setup: the chosen model's memory plan beside this machine, the placement to
load it with, and its download from the Hub with progress and cancel.

The plan (the config read, the model counted on the meta device) and the download run in
superqt workers, never on the UI thread. The dialog returns the chosen
:class:`~tam_engine.inference.model_placement.ModelPlacement`; the main window passes it with
every run of that model.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import GeneratorWorker, WorkerBase, create_worker

from tam_engine.core.errors import Cancelled, TamError
from tam_engine.inference.model_placement import ModelPlacement

__all__ = ["ModelSetupDialog", "compute_plan"]

PlanResult = tuple[list[str], list[tuple[str, ModelPlacement, str]]]


def compute_plan(model: str, dtype: str = "auto") -> PlanResult:
    """Lines describing the need and the machine, and the placement choices (label,
    placement, trade-off), the proposed one first. Runs in a worker thread."""
    from tam_engine.inference.plan import (
        default_offload_folder,
        model_size,
        plan_config,
        propose,
        this_machine,
    )

    machine = this_machine()
    if dtype == "auto":
        dtype = "bfloat16" if machine.gpus else "float32"
    size = model_size(plan_config(model), model)
    proposal = propose(size, machine, dtype)
    lines = [f"Needs: {size.need(dtype).describe()}"]
    if machine.gpus:
        lines += [f"4-bit: {size.need(dtype, '4bit').describe()}"]
    lines += machine.describe()
    offload = default_offload_folder()
    choices = [(f"Proposed: {proposal.kind}", proposal.placement, proposal.trade_off),
               ("One device (the whole model)", ModelPlacement(),
                "fastest when it fits; exact weights."),
               ("Split automatically (GPUs, then CPU memory)", ModelPlacement("auto"),
                "exact weights; layers off the GPU are slower."),
               ("Split automatically, with disk offload", ModelPlacement("auto",
                                                                         offload_folder=offload),
                "exact weights; layers read from disk are very slow.")]
    if machine.gpus:
        choices += [("4-bit (bitsandbytes)", ModelPlacement(quantization="4bit"),
                     "a quarter of the memory; weights approximated (lm_head stays exact)."),
                    ("8-bit (bitsandbytes)", ModelPlacement(quantization="8bit"),
                     "half the memory; slower; weights approximated (lm_head stays exact).")]
    if not proposal.fits:  # nothing to propose: the plain choices remain, with the warning
        lines.append("This model does not fit on this machine, even with disk offload.")
        choices = choices[1:]
    return lines, choices


def _download_job(model: str, emit: Callable[[Any], None], should_stop: Callable[[], bool]
                  ) -> Generator[None, None, str | None]:
    from tam_engine.inference.hub import download_model

    yield None  # started
    path = download_model(model, on_progress=emit, should_stop=should_stop)
    return None if path is None else str(path)


class ModelSetupDialog(QDialog):
    """The plan, the placement and the download of one model."""

    download_done = Signal(object)    # the snapshot folder (str) or None offline
    download_stopped = Signal(object)  # the exception: Cancelled or another error

    def __init__(self, model: str, placement: ModelPlacement | None = None,
                 parent: QWidget | None = None, *, dtype: str = "auto",
                 plan: Callable[[str, str], PlanResult] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model Setup")
        self.model = model
        self._initial = placement
        self._choices: list[tuple[str, ModelPlacement, str]] = []
        self._plan_worker: WorkerBase | None = None
        self._download: GeneratorWorker | None = None

        self.plan_label = QLabel("Computing the memory plan …", self)
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.placement_box = QComboBox(self)
        self.placement_box.setEnabled(False)
        self.trade_off = QLabel(self)
        self.trade_off.setWordWrap(True)
        self.trade_off.setStyleSheet("color: #5f6368;")
        self.offload_edit = QLineEdit(self)
        self.offload_edit.setPlaceholderText("folder for weights offloaded to disk")

        self.download_button = QPushButton("Download", self)
        self.download_button.setToolTip("Fetch the model's files into the Hugging Face cache")
        self.cancel_download_button = QPushButton("Cancel Download", self)
        self.cancel_download_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.download_status = QLabel(self)
        self.download_status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Model", QLabel(model, self))
        form.addRow("Plan", self.plan_label)
        form.addRow("Placement", self.placement_box)
        form.addRow("", self.trade_off)
        form.addRow("Offload folder", self.offload_edit)
        row = QHBoxLayout()
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_download_button)
        row.addWidget(self.progress, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addLayout(form)
        col.addLayout(row)
        col.addWidget(self.download_status)
        col.addWidget(buttons)

        self.placement_box.currentIndexChanged.connect(self._on_choice)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_download_button.clicked.connect(self.cancel_download)
        self._start_plan(plan or compute_plan, dtype)

    # ------------------------------------------------------------------ plan
    def _start_plan(self, plan: Callable[[str, str], PlanResult], dtype: str) -> None:
        worker = create_worker(plan, self.model, dtype, _start_thread=False,
                               _ignore_errors=True)
        worker.returned.connect(self._on_plan)
        worker.errored.connect(self._on_plan_error)
        self._plan_worker = worker
        worker.start()

    def _on_plan(self, result: PlanResult) -> None:
        lines, choices = result
        self.plan_label.setText("\n".join(lines))
        self._choices = choices
        self.placement_box.blockSignals(True)
        self.placement_box.clear()
        for label, _p, _t in choices:
            self.placement_box.addItem(label)
        self.placement_box.blockSignals(False)
        self.placement_box.setEnabled(True)
        index = 0
        if self._initial is not None:  # the placement chosen before stays chosen
            same = [i for i, (_l, p, _t) in enumerate(choices) if p == self._initial]
            index = same[0] if same else 0
        self.placement_box.setCurrentIndex(index)
        self._on_choice(index)

    def _on_plan_error(self, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, TamError) else f"{type(exc).__name__}: {exc}"
        self.plan_label.setText(f"No plan: {message}")
        self._choices = [("One device (the whole model)", ModelPlacement(), "")]
        self.placement_box.clear()
        self.placement_box.addItem(self._choices[0][0])
        self.placement_box.setEnabled(True)

    def _on_choice(self, index: int) -> None:
        if 0 <= index < len(self._choices):
            _label, placement, trade_off = self._choices[index]
            self.trade_off.setText(trade_off)
            self.offload_edit.setText(placement.offload_folder or "")

    def placement(self) -> ModelPlacement:
        """The chosen placement (with the offload folder as edited)."""
        index = self.placement_box.currentIndex()
        base = self._choices[index][1] if 0 <= index < len(self._choices) else ModelPlacement()
        folder = self.offload_edit.text().strip() or None
        if folder == base.offload_folder:
            return base
        return ModelPlacement(base.device_map or ("auto" if folder else None), base.max_memory,
                              folder, base.quantization)

    # ------------------------------------------------------------------ download
    def start_download(self) -> None:
        if self._download is not None:
            return
        box: dict[str, GeneratorWorker] = {}

        def emit(event: Any) -> None:
            box["worker"].yielded.emit(event)

        def should_stop() -> bool:
            return box["worker"].abort_requested

        worker = create_worker(_download_job, self.model, emit, should_stop,
                               _start_thread=False, _ignore_errors=True)
        assert isinstance(worker, GeneratorWorker)
        box["worker"] = worker
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_downloaded)
        worker.errored.connect(self._on_download_error)
        worker.finished.connect(self._on_download_finished)
        self._download = worker
        self.download_button.setEnabled(False)
        self.cancel_download_button.setEnabled(True)
        self.download_status.setText("Asking the Hub for the file list …")
        worker.start()

    def cancel_download(self) -> None:
        if self._download is not None:
            self.download_status.setText("Cancelling …")
            self._download.quit()

    def _on_progress(self, p: Any) -> None:
        if p is None:
            return
        if p.bytes_total:
            self.progress.setValue(int(1000 * p.bytes_done / p.bytes_total))
        self.download_status.setText(f"{p.file}: {p.describe()}" if p.file else p.describe())

    def _on_downloaded(self, path: str | None) -> None:
        self.progress.setValue(1000)
        self.download_status.setText(
            "Downloaded into the Hugging Face cache." if path else
            "Offline mode (HF_HUB_OFFLINE): nothing was downloaded.")
        self.download_done.emit(path)

    def _on_download_error(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self.download_status.setText("Download cancelled: what arrived is kept, and the "
                                         "next download resumes from there.")
        elif isinstance(exc, TamError):
            self.download_status.setText(f"{exc.message}\n{exc.hint}")
        else:
            self.download_status.setText(f"Download failed: {type(exc).__name__}: {exc}")
        self.download_stopped.emit(exc)

    def _on_download_finished(self, *_args: object) -> None:
        self._download = None
        self.download_button.setEnabled(True)
        self.cancel_download_button.setEnabled(False)

    @property
    def downloading(self) -> bool:
        return self._download is not None

    def done(self, result: int) -> None:
        # Closing the dialog stops a download in progress (it resumes next time).
        self.cancel_download()
        super().done(result)


def open_model_setup(window: Any, model: str, placements: dict[str, ModelPlacement]
                     ) -> ModelSetupDialog | None:
    """Open the dialog for ``model`` over ``window`` (an AppWindow); on OK its placement is
    kept in ``placements`` for the runs of that model, and the status bar says so."""
    if not model:
        window.show_status("Choose a model first (a Hub id or a model folder).")
        return None
    dlg = ModelSetupDialog(model, placements.get(model), window,
                           dtype=window.settings.generation.dtype)

    def finished(result: int) -> None:
        if result:
            placements[model] = dlg.placement()
            window.show_status(f"{model} will load: {placements[model].describe()}")
        dlg.deleteLater()

    dlg.finished.connect(finished)
    dlg.open()
    return dlg
