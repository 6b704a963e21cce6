"""PSNR and SSIM under an EvalProtocol, checked against scikit-image as the independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from laformer.metrics import EvalProtocol, psnr, rgb_to_y, score, ssim


def _pair(channels: int, seed: int, noise: float, h: int = 61, w: int = 70) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo crop (8-bit target) and a noisy, slightly out-of-range 'restoration' of it, (1, C, H, W)."""
    photo = skimage.data.astronaut()[100 : 100 + h, 200 : 200 + w]
    target = torch.from_numpy(photo.copy()).permute(2, 0, 1).double()[None] / 255
    if channels == 1:
        target = (target * 255).mean(1, keepdim=True).round() / 255
    gen = torch.Generator().manual_seed(seed)
    pred = target + noise * torch.randn(target.shape, generator=gen, dtype=torch.float64)
    pred[..., :6, :] += 0.1  # a bad border, so cropping it changes the scores
    return pred, target


def _reference(pred: torch.Tensor, target: torch.Tensor, protocol: EvalProtocol) -> tuple[float, float]:
    """PSNR and SSIM of one (1, C, H, W) pair, with numpy and scikit-image only."""

    def prepare(x: torch.Tensor) -> np.ndarray:
        image = np.clip(x[0].numpy().astype(np.float64).transpose(1, 2, 0), 0, 1)  # H x W x C
        if protocol.quantize:
            image = np.round(image * 255) / 255
        if protocol.color == "y" and image.shape[2] == 3:
            image = rgb2ycbcr(image)[..., :1] / 255
        b = protocol.crop_border
        if b:
            image = image[b:-b, b:-b]
        return image

    p, t = prepare(pred), prepare(target)
    ref_psnr = peak_signal_noise_ratio(t, p, data_range=1.0)
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    if p.shape[2] == 1:
        ref_ssim = structural_similarity(t[..., 0], p[..., 0], **kwargs)
    else:
        ref_ssim = structural_similarity(t, p, channel_axis=-1, **kwargs)
    return float(ref_psnr), float(ref_ssim)


@pytest.mark.parametrize("color", ["rgb", "y"])
@pytest.mark.parametrize("crop_border", [0, 4])
@pytest.mark.parametrize("quantize", [False, True])
@pytest.mark.parametrize("channels", [3, 1])
def test_psnr_ssim_match_scikit_image(color: str, crop_border: int, quantize: bool, channels: int) -> None:
    protocol = EvalProtocol(color=color, crop_border=crop_border, quantize=quantize)
    pairs = [_pair(channels, seed, noise) for seed, noise in ((0, 0.02), (1, 0.08))]
    pred = torch.cat([p for p, _ in pairs])
    target = torch.cat([t for _, t in pairs])
    scores = score(pred.float(), target.float(), protocol)
    assert scores["psnr"].shape == scores["ssim"].shape == (2,)
    for i, (p, t) in enumerate(pairs):
        ref_psnr, ref_ssim = _reference(p.float().double(), t.float().double(), protocol)
        assert scores["psnr"][i].item() == pytest.approx(ref_psnr, abs=1e-4)
        assert scores["ssim"][i].item() == pytest.approx(ref_ssim, abs=1e-5)
    # the noisier restoration scores lower
    assert scores["psnr"][1] < scores["psnr"][0] - 5
    assert scores["ssim"][1] < scores["ssim"][0]


def test_protocol_choices_change_the_scores() -> None:
    pred, target = _pair(3, 0, 0.03)
    rgb = score(pred, target, EvalProtocol(color="rgb", crop_border=0))
    cropped = score(pred, target, EvalProtocol(color="rgb", crop_border=8))
    luma = score(pred, target, EvalProtocol(color="y", crop_border=0))
    assert cropped["psnr"] > rgb["psnr"] + 0.5  # the bad top rows are cropped away
    assert abs(luma["psnr"].item() - rgb["psnr"].item()) > 0.1


def test_identical_images_score_perfect_ssim_and_infinite_psnr() -> None:
    _, target = _pair(3, 0, 0.0)
    result = score(target, target, EvalProtocol())
    assert torch.isinf(result["psnr"]).all()
    assert result["ssim"].item() == pytest.approx(1.0, abs=1e-12)


def test_quantize_rounds_the_restoration_to_8_bit() -> None:
    _, target = _pair(3, 0, 0.0)
    target = (target * 200).round() / 255 + 20 / 255  # 8-bit levels 20 .. 220: no clipping below
    pred = target + 0.4 / 255  # rounds back onto the target's 8-bit levels
    assert torch.isinf(score(pred, target, EvalProtocol(quantize=True))["psnr"]).all()
    unquantized = score(pred, target, EvalProtocol(quantize=False))["psnr"].item()
    assert unquantized == pytest.approx(20 * np.log10(255 / 0.4), abs=1e-4)


def test_rgb_to_y_matches_scikit_image() -> None:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    y = rgb_to_y(image)
    assert y.shape == (2, 1, 9, 11)
    for i in range(2):
        expected = rgb2ycbcr(image[i].numpy().transpose(1, 2, 0))[..., 0] / 255
        np.testing.assert_allclose(y[i, 0].numpy(), expected, atol=1e-12)
    assert rgb_to_y(torch.zeros(1, 3, 1, 1)).item() == pytest.approx(16 / 255)
    assert rgb_to_y(torch.ones(1, 3, 1, 1, dtype=torch.float64)).item() == pytest.approx(235 / 255)


def test_psnr_and_ssim_functions_directly() -> None:
    pred, target = _pair(1, 3, 0.05)
    pred = pred.clamp(0, 1)
    mse = (pred - target).pow(2).mean().item()
    # torchmetrics scales by 10 / ln(10) in float32: ~1e-6 dB off the float64 value
    assert psnr(pred, target).item() == pytest.approx(10 * np.log10(1 / mse), abs=1e-5)
    ref = structural_similarity(
        target[0, 0].numpy(),
        pred[0, 0].numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert ssim(pred, target).item() == pytest.approx(ref, abs=1e-10)


def test_score_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="cannot score"):
        score(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17), EvalProtocol())


@pytest.mark.parametrize(
    "field",
    [
        {"color": "ycbcr"},
        {"color": "RGB "},
        {"size_policy": "resize"},
        {"align": "sift"},
        {"ssim": "matlab"},
    ],
)
def test_invalid_protocol_fields_raise(field: dict) -> None:
    name = next(iter(field))
    with pytest.raises(ValueError, match=f"EvalProtocol.{name}"):
        EvalProtocol(**field)


@pytest.mark.parametrize("field", [{"crop_border": -1}, {"size_multiple": 0}, {"size_multiple": -8}])
def test_invalid_protocol_numbers_raise(field: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(field))):
        EvalProtocol(**field)


def test_valid_protocols_construct() -> None:
    for color in ("rgb", "y"):
        for size_policy in ("pad", "crop"):
            for align in ("none", "ecc"):
                protocol = EvalProtocol(color=color, size_policy=size_policy, align=align, crop_border=2)
                assert (protocol.color, protocol.size_policy, protocol.align) == (color, size_policy, align)


def test_separable_ssim_window_equals_the_two_dimensional_window() -> None:
    """The row-then-column Gaussian blur gives the SSIM map of the full 11 x 11 window to float64 rounding."""
    import torch.nn.functional as F

    from laformer.metrics.image_metrics import ssim_map

    gen = torch.Generator().manual_seed(3)
    pred = torch.rand(2, 3, 40, 33, generator=gen, dtype=torch.float64)
    target = (pred + 0.1 * torch.randn(pred.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    x = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    window = torch.outer(g, g) / torch.outer(g, g).sum()
    kernel = window.expand(3, 1, 11, 11)

    def blur(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, kernel, groups=3)

    mu_p, mu_t = blur(pred), blur(target)
    var_p, var_t = blur(pred * pred) - mu_p**2, blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    c1, c2 = 0.01**2, 0.03**2
    reference = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    fast = ssim_map(pred, target)
    assert fast.shape == reference.shape == (2, 3, 30, 23)
    assert torch.allclose(fast, reference, rtol=0, atol=1e-12)
