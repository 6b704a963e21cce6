"""Peer networks from spandrel's classes behind the suite's one seam: sizes, padding, descriptors, the registry."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch

from laformer.models import NetworkConfigError, build_network, network_info
from laformer.models.complexity import count_macs, count_parameters
from laformer.models.peers import (
    BUILD_TARGET,
    FAMILIES,
    PaddedNetwork,
    PeerUnavailableError,
    _registry,
    build_peer,
    import_spandrel,
    network_class,
    pad_to_size,
)

try:
    import_spandrel()
except PeerUnavailableError as exc:  # the core suite works without the `peers` extra
    pytest.skip(str(exc), allow_module_level=True)

ARCHS = sorted(FAMILIES)


@pytest.mark.parametrize("arch", ARCHS)
def test_any_size_in_same_size_out_and_every_parameter_learns(arch: str) -> None:
    torch.manual_seed(0)
    net = build_peer(arch, "tiny")
    x = torch.rand(2, 3, 37, 45)  # sides that are multiples of nothing the networks need
    y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # Two steps: NAFNet starts its residual scales at zero, so its inner layers get gradient from the second on.
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        (net(x) - x).square().mean().backward()
        optimizer.step()
    frozen = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not frozen, f"{arch}: parameters without gradient {frozen[:5]}"


@pytest.mark.parametrize("arch", ARCHS)
def test_descriptor_agrees_with_spandrels_reading_of_the_weights(arch: str) -> None:
    """Our table of each family (channels, size needs, precisions) is what spandrel reads from the same weights,
    so a network trained here is recognised like a published one."""
    net = build_peer(arch, "tiny")
    info = network_info(net)
    state = net.model.state_dict()
    support = _registry().get(FAMILIES[arch].spandrel_id)
    assert support.detect(state), f"spandrel does not recognise a {arch} built by build_peer"
    descriptor = support.architecture.load(dict(state))
    assert (info.in_channels, info.out_channels) == (descriptor.input_channels, descriptor.output_channels)
    assert info.size_multiple % descriptor.size_requirements.multiple_of == 0
    assert net.minimum >= descriptor.size_requirements.minimum
    assert (info.supports_fp16, info.supports_bf16) == (descriptor.supports_half, descriptor.supports_bfloat16)
    assert info.family == arch and info.preset == "tiny" and info.peak_bytes_per_pixel is None


@pytest.mark.parametrize(
    ("arch", "params_m", "macs_g"),
    [
        ("nafnet", 29.16, 16.05),  # NAFNet-SIDD-width32: 29.2 M, 16 G (the paper)
        ("restormer", 26.13, 154.88),  # 26.1 M (the paper; its 141 G is counted another way)
        ("drunet", 32.64, 138.78),  # drunet_color: 32.6 M
        ("dncnn", 0.67, 43.71),  # CDnCNN-B: 0.67 M
    ],
)
def test_base_is_the_published_size(arch: str, params_m: float, macs_g: float) -> None:
    net = build_peer(arch, "base")
    assert count_parameters(net) / 1e6 == pytest.approx(params_m, abs=0.01)
    assert count_macs(net, 256, 256) / 1e9 == pytest.approx(macs_g, abs=0.01)


def test_overrides_and_channels_reach_the_class() -> None:
    net = build_peer("nafnet", "small", width=24)
    assert net.model.intro.out_channels == 24 and net.info.size_multiple == 16
    grey = build_peer("drunet", "tiny", in_channels=1, noise_level=50)
    assert grey.info.in_channels == 1 and grey.model.m_head.in_channels == 2  # + the noise-level map
    assert grey(torch.rand(1, 1, 20, 30)).shape == (1, 1, 20, 30)
    assert grey.noise_level == 50
    with pytest.raises(NetworkConfigError, match="unknown nafnet preset 'huge'"):
        build_peer("nafnet", "huge")
    with pytest.raises(NetworkConfigError, match="unknown peer network 'unet'"):
        build_peer("unet")
    with pytest.raises(TypeError):
        build_peer("nafnet", "tiny", not_an_argument=1)


def test_noise_level_changes_drunets_output() -> None:
    torch.manual_seed(0)
    net = build_peer("drunet", "tiny", noise_level=15)
    x = torch.rand(1, 3, 16, 16)
    low = net(x)
    net.noise_level = 50
    assert not torch.allclose(low, net(x))


def test_config_from_a_file_builds_through_the_registry() -> None:
    config = {"_target_": BUILD_TARGET, "arch": "swinir", "preset": "tiny", "in_channels": 3, "embed_dim": None}
    net = build_network(config, source="config.json")
    assert isinstance(net, PaddedNetwork) and network_info(net).family == "swinir"
    assert net.model.embed_dim == 16  # None keeps the preset's value


def test_padding_to_a_multiple_and_a_minimum() -> None:
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    assert pad_to_size(x, 8).shape[-2:] == (8, 8)
    assert pad_to_size(x, 8, minimum=16).shape[-2:] == (16, 16)
    assert pad_to_size(x, 1, minimum=6).shape[-2:] == (6, 7)
    assert pad_to_size(x, 4, mode="constant")[..., 5:, :].abs().sum() == 0  # NAFNet's own zeros
    assert pad_to_size(x, 1) is x
    padded = pad_to_size(x, 8)
    torch.testing.assert_close(padded[..., :5, :7], x)


def test_torchvision_stand_in_leaves_nothing_behind() -> None:
    """spandrel imports torchvision for two architectures the suite never uses; where it is not installed the
    stand-in lives only during spandrel's import."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed: no stand-in is used")
    assert "spandrel" in sys.modules and "torchvision" not in sys.modules
    from spandrel.architectures.LaMa.__arch import LaMa  # the stand-in's functions raise if ever called

    with pytest.raises(ModuleNotFoundError, match="torchvision is not installed"):
        LaMa.rotate(torch.zeros(1, 1, 2, 2), 90)


def test_missing_package_is_named_with_its_install_line() -> None:
    absent = dataclasses.replace(FAMILIES["restormer"], package="not-an-installed-package")
    with pytest.raises(PeerUnavailableError, match=r"needs not-an-installed-package.*non-commercial"):
        network_class(absent)
