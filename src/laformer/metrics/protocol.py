"""How a benchmark is scored. Each dataset config declares one; the LightningModule follows it."""

from __future__ import annotations

from dataclasses import dataclass

COLOR_SPACES = ("rgb", "y")
SIZE_POLICIES = ("pad", "crop")
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
            target to ``size_multiple`` before inference (UHD benchmarks).
        size_multiple: the multiple for ``crop``.
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
