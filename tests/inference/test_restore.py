"""``restore_image``: one pass, tiles, precisions and self-ensemble on a real LAformer."""

from __future__ import annotations

import pytest
import torch

from laformer.inference import pick_device, restore_image
from laformer.models import LAformer


@pytest.fixture(scope="module")
def net() -> LAformer:
    torch.manual_seed(0)
    return LAformer.from_preset("tiny", width=8).eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(3, 44, 61, generator=torch.Generator().manual_seed(3))


def test_one_pass_is_the_network_output(net: LAformer, image: torch.Tensor) -> None:
    out = restore_image(net, image)
    assert out.shape == image.shape and out.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(out, net(image[None])[0].clamp(0, 1))


def test_a_tile_larger_than_the_image_is_one_pass(net: LAformer, image: torch.Tensor) -> None:
    torch.testing.assert_close(restore_image(net, image, tile=64), restore_image(net, image))


def test_tiled_keeps_shape_and_batch(net: LAformer) -> None:
    batch = torch.rand(2, 3, 70, 53)
    out = restore_image(net, batch, tile=32, overlap=8, tile_batch=2)
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1


def test_self_ensemble_differs_but_stays_close(net: LAformer, image: torch.Tensor) -> None:
    plain, ensembled = restore_image(net, image), restore_image(net, image, self_ensemble=True)
    assert ensembled.shape == image.shape
    assert not torch.equal(plain, ensembled)
    assert (plain - ensembled).abs().mean() < 0.05


def test_bf16_on_cpu_is_close_to_fp32(net: LAformer, image: torch.Tensor) -> None:
    out = restore_image(net, image, precision="bf16")
    assert out.dtype == torch.float32
    assert (out - restore_image(net, image)).abs().mean() < 0.02


def test_fp16_on_cpu_is_refused_with_the_alternative(net: LAformer, image: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="fp16 needs a CUDA or MPS device; on the CPU use bf16 or fp32"):
        restore_image(net, image, precision="fp16")


def test_device_choice() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert pick_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="no CUDA device is available"):
            pick_device("cuda")
