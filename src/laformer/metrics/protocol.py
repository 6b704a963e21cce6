"""How a benchmark is scored. Each dataset config declares one; the LightningModule follows it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

COLOR_SPACES = ("rgb", "y")
SIZE_POLICIES = ("pad", "crop", "center_crop")
ALIGNMENTS = ("none", "ecc")


@dataclass(frozen=True)
class EvalProtocol:
    """Scoring rules of one benchmark.

    Attributes:
        color: ``rgb`` scores all channels; ``y`` scores the luma of YCbCr (ITU-R BT.601, MATLAB constants).
        crop_border: pixels removed from each side before scoring.
        ssim: SSIM variant; ``gaussian`` is the 11 x 11, sigma 1.5 Gaussian window (Wang et al., skimage, BasicSR).
        quantize: round the restored image to 8 bit before scoring, as if saved as PNG and read back.
        size_policy: ``pad`` lets the network pad to its multiple and crop back; ``crop`` crops input and
            target to a multiple of ``size_multiple`` before inference, keeping the top-left corner (UHDFour);
            ``center_crop`` keeps the centre (4K-Rain13k, UDR-Mixer).
        size_multiple: the multiple for ``crop`` and ``center_crop``.
        align: ``ecc`` aligns the restored image to the target before scoring (RealBlur); ``none`` does not.
    """

    color: str = "rgb"
    crop_border: int = 0
    ssim: str = "gaussian"
    quantize: bool = True
    size_policy: str = "pad"
    size_multiple: int = 8
    align: str = "none"

    def __post_init__(self) -> None:
        for value, choices, field in (
            (self.color, COLOR_SPACES, "color"),
            (self.size_policy, SIZE_POLICIES, "size_policy"),
            (self.align, ALIGNMENTS, "align"),
            (self.ssim, ("gaussian",), "ssim"),
        ):
            if value not in choices:
                raise ValueError(f"EvalProtocol.{field} must be one of {choices}, got {value!r}")
        if self.crop_border < 0:
            raise ValueError(f"EvalProtocol.crop_border must be >= 0, got {self.crop_border}")
        if self.size_multiple < 1:
            raise ValueError(f"EvalProtocol.size_multiple must be >= 1, got {self.size_multiple}")


def apply_size_policy(inp: Tensor, target: Tensor, protocol: EvalProtocol) -> tuple[Tensor, Tensor]:
    """Crop input and target to a multiple of ``size_multiple`` when the protocol crops; else unchanged."""
    if protocol.size_policy == "pad":
        return inp, target
    m = protocol.size_multiple
    h, w = inp.shape[-2:]
    th, tw = (h // m) * m, (w // m) * m
    if th == 0 or tw == 0:
        raise ValueError(f"cannot crop a {h}x{w} image to a multiple of {m} (size_policy={protocol.size_policy})")
    top, left = ((h - th) // 2, (w - tw) // 2) if protocol.size_policy == "center_crop" else (0, 0)
    window = (..., slice(top, top + th), slice(left, left + tw))
    return inp[window], target[window]
