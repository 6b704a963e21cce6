"""Global photometric degradations (laformer.data.photometric): one exposure per image, the sensor's noises, stored
as a file holds it; seeded evaluation sets are reproducible; the config builds it."""

from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from laformer.data.demo import load_demo_photo
from laformer.data.photometric import LowLight
from laformer.runs import config_dir


def _photos() -> torch.Tensor:
    """Two real photos (the same 96 x 96 corner of each), (2, 3, 96, 96) in [0, 1]."""
    images = [torch.from_numpy(load_demo_photo(n)[:96, :96].copy()).permute(2, 0, 1) for n in ("chelsea", "coffee")]
    return torch.stack(images).float() / 255


def test_noiseless_low_light_is_one_exposure_per_image_times_the_gamma_curve() -> None:
    clean = _photos()
    dark = LowLight(gamma=2.0, exposure=(0.1, 0.4), shot=0.0, read_sigma=0.0, clip=False, quantize=None)(
        clean, torch.Generator().manual_seed(3)
    )
    curve = clean**2
    ratio = dark / curve.clamp(min=1e-6)
    mask = curve > 1e-2
    for i in range(2):  # one factor for the whole image, different between the images, within the range
        factors = ratio[i][mask[i]]
        assert factors.std() < 1e-5 and 0.1 <= factors.mean() <= 0.4
    assert abs(ratio[0][mask[0]].mean() - ratio[1][mask[1]].mean()) > 1e-3


def test_low_light_is_dark_noisy_clipped_and_8_bit() -> None:
    clean = _photos()
    low = LowLight()(clean, torch.Generator().manual_seed(0))
    assert low.shape == clean.shape and low.min() >= 0 and low.max() <= 1
    assert torch.allclose(low * 255, (low * 255).round(), atol=1e-4)  # 8-bit levels
    assert low.mean() < 0.4 * clean.mean()
    noiseless = LowLight(shot=0.0, read_sigma=0.0, quantize=None)(clean, torch.Generator().manual_seed(0))
    residual = (low - noiseless).std()
    assert 2 / 255 < residual < 20 / 255  # shot and read noise on top of the dim image


def test_seeded_draws_repeat_and_fresh_ones_differ() -> None:
    clean = _photos()
    degrade = LowLight()
    a = degrade(clean, torch.Generator().manual_seed(5))
    b = degrade(clean, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    torch.manual_seed(1)
    c = degrade(clean)  # training: no generator, the global (seeded per sample) stream
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs", [{"exposure": (0.5, 0.2)}, {"exposure": (0.0, 0.3)}, {"gamma": 0.0}, {"quantize": 12}, {"shot": -1}]
)
def test_bad_settings_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        LowLight(**kwargs)


def test_the_config_builds_it() -> None:
    degrade = hydra.utils.instantiate(OmegaConf.load(f"{config_dir()}/data/degradation/lowlight.yaml"))
    assert isinstance(degrade, LowLight) and degrade.exposure == (0.1, 0.4) and degrade.quantize == 8
