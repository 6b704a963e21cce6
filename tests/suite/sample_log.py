"""A callback the two-node test adds from the command line: each rank writes the training pairs it read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L


class RecordSamples(L.Callback):
    """Append ``<global step> <pair name>`` for every training sample to ``<folder>/rank<global rank>.txt``."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"rank{trainer.global_rank}.txt", "a", encoding="utf-8") as log:
            log.writelines(f"{trainer.global_step} {name}\n" for name in batch["name"])
