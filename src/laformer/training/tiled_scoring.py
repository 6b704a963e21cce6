"""Score each test image a second time, restored tile by tile, beside the module's one-pass score.

A network trained on crops meets whole images at test time. Restoring in tiles of its training crop size
(``laformer.inference.tiled_forward``, overlapping tiles cross-faded) shows it only what it saw in training;
one pass shows it the whole image, so global attention can use context it never had in training. The
difference between the two scores is what global context gains, or loses, on a whole image.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from laformer.inference.tiling import check_tiles, tiled_forward
from laformer.metrics import score
from laformer.models.registry import network_info


class TiledScoring(L.Callback):
    """During ``trainer.test``: each image restored in ``tile`` x ``tile`` tiles, scored under the set's protocol.

    Logs ``test/<set>/tiled_psnr``, ``test/<set>/tiled_ssim`` and ``test/<set>/tile`` (the tile side), next to
    the module's whole-image ``test/<set>/psnr``; ``laformer-train`` puts them all in ``summary.json``.

    Args:
        tile: tile side in pixels, a multiple of the network's size multiple (the training crop size).
        overlap: pixels shared by neighbouring tiles; None: a quarter of the tile, rounded down to the multiple.
    """

    def __init__(self, tile: int, overlap: int | None = None) -> None:
        if tile <= 0:
            raise ValueError(f"tile must be a positive number of pixels, got {tile}")
        self.tile, self.overlap = int(tile), overlap

    def overlap_for(self, multiple: int) -> int:
        if self.overlap is not None:
            return int(self.overlap)
        return self.tile // 4 // multiple * multiple

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, dict) or "input" not in outputs:
            return
        net = pl_module.net
        multiple = network_info(net).size_multiple
        check_tiles(network_info(net), self.tile, self.overlap_for(multiple))
        set_name = batch["set"][0]
        inp, target = outputs["input"], outputs["target"]  # after the protocol's size policy, as scored whole
        restored = tiled_forward(net, inp, self.tile, self.overlap_for(multiple), multiple).clamp(0, 1)
        scores = score(restored, target, pl_module.protocol_for(set_name))
        n = float(inp.shape[0])
        prefix = f"test/{set_name}"
        for key in ("psnr", "ssim"):
            pl_module.log(
                f"{prefix}/tiled_{key}", scores[key].mean(), batch_size=n, sync_dist=True, add_dataloader_idx=False
            )
        pl_module.log(f"{prefix}/tile", float(self.tile), batch_size=n, sync_dist=True, add_dataloader_idx=False)
