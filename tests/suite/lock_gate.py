"""A callback that holds a real ``laformer-train`` at a chosen point until the test opens a gate file.

It lets a test keep a training (and so its run-folder lock) alive while it starts a second one or kills the
first, without guessing how long an import or a step takes on a loaded machine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L


class HoldUntil(L.Callback):
    """Wait at the start of fit (``step`` 0) or after optimiser step ``step`` until ``gate`` exists.

    Writes ``<gate>.waiting`` when it starts waiting, so the test knows the process got that far. Gives up after
    ``timeout`` seconds (an abandoned test must not leave a process behind forever).
    """

    def __init__(self, gate: str, step: int = 0, timeout: float = 300) -> None:
        self.gate, self.step, self.timeout = Path(gate), step, timeout

    def _hold(self) -> None:
        Path(f"{self.gate}.waiting").write_text("waiting\n")
        deadline = time.monotonic() + self.timeout
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.step == 0:
            self._hold()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.step and trainer.global_step == self.step:
            self._hold()
