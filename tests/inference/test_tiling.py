"""Tiled restoration: tile layout, exact reassembly, no seams with a real LAformer, bounded tile sizes."""

from __future__ import annotations

import pytest
import torch
from skimage import data
from torch import Tensor, nn

from laformer.inference.tiling import ramp_window, tile_count, tile_ends, tile_starts, tiled_forward
from laformer.models import LAformer


@pytest.mark.parametrize("length", [1, 7, 48, 49, 100, 127, 513, 2160, 3840])
@pytest.mark.parametrize(("tile", "overlap", "multiple"), [(48, 16, 8), (64, 0, 8), (512, 32, 8), (16, 8, 1)])
def test_tile_layout_covers_the_axis(length: int, tile: int, overlap: int, multiple: int) -> None:
    starts = tile_starts(length, tile, overlap, multiple)
    ends = tile_ends(starts, length, tile)
    assert starts[0] == 0 and ends[-1] == length
    assert all(s % multiple == 0 for s in starts)
    assert starts == sorted(set(starts))
    for e0, s1 in zip(ends, starts[1:]):
        assert e0 - s1 >= overlap  # neighbours share at least the overlap, so nothing is left uncovered
    sizes = [e - s for s, e in zip(starts, ends)]
    assert max(sizes) <= max(min(length, tile), tile + multiple - 1)
    if length <= tile:
        assert starts == [0]


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (12, 0), (48, 41), (48, -1)])
def test_bad_tile_settings_are_refused(tile: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="tile"):
        tile_starts(100, tile, overlap, 8)


def test_window_is_smooth_positive_and_flat_inside() -> None:
    w = ramp_window(64, 16, left=True, right=True)
    assert (w > 0).all() and w.max() == 1
    assert torch.equal(w, w.flip(0))
    assert (w[:16].diff() > 0).all() and (w[16:48] == 1).all()
    assert w[0] < 0.02  # starts near zero: a neighbour's edge hardly counts
    edge = ramp_window(64, 16, left=False, right=True)
    assert (edge[:48] == 1).all()  # an image border has no neighbour to fade into


class Identity3x3(nn.Conv2d):
    """A 3 x 3 convolution whose kernel is a centred delta: output = input, computed like a real layer."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels, 3, padding=1, bias=False)
        with torch.no_grad():
            self.weight.zero_()
            for c in range(channels):
                self.weight[c, c, 1, 1] = 1.0


@pytest.mark.parametrize("shape", [(40, 40), (33, 71), (100, 97), (130, 64)])
@pytest.mark.parametrize("tile_batch", [1, 3])
def test_identity_network_is_reassembled_exactly(shape: tuple[int, int], tile_batch: int) -> None:
    x = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    net = Identity3x3(3).double()
    out = tiled_forward(net, x, tile=32, overlap=8, multiple=8, tile_batch=tile_batch)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, x, rtol=0, atol=1e-12)


def test_image_smaller_than_a_tile_goes_through_whole() -> None:
    seen = []

    def record(t: Tensor) -> Tensor:
        seen.append(tuple(t.shape))
        return t

    x = torch.rand(1, 3, 20, 30)
    assert torch.equal(tiled_forward(record, x, tile=32, overlap=8), x)
    assert seen == [(1, 3, 20, 30)]


def test_output_channels_may_differ() -> None:
    x = torch.rand(1, 3, 50, 70)

    def to_gray(t: Tensor) -> Tensor:
        return t.mean(1, keepdim=True)

    out = tiled_forward(to_gray, x, tile=24, overlap=8, out_channels=1)
    torch.testing.assert_close(out, to_gray(x))


@pytest.mark.parametrize("tile_batch", [1, 4])
def test_tiles_never_exceed_the_tile_size(tile_batch: int) -> None:
    """Memory is bounded by the tile: the network never sees more than a batch of tile-sized inputs."""
    seen = []
    net = Identity3x3(3)

    def record(t: Tensor) -> Tensor:
        seen.append(tuple(t.shape))
        return net(t)

    h, w, tile = 300, 451, 64
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        tiled_forward(record, x, tile=tile, overlap=16, multiple=8, tile_batch=tile_batch)
    assert sum(s[0] for s in seen) == tile_count(h, w, tile, 16, 8)
    assert max(s[0] for s in seen) <= tile_batch
    assert max(s[2] for s in seen) <= tile + 7 and max(s[3] for s in seen) <= tile + 7
    assert max(s[2] * s[3] for s in seen) < h * w / 10


def _photo() -> Tensor:
    """A 96 x 120 crop of a real photo (scikit-image's astronaut, a quarter of its size)."""
    return torch.from_numpy(data.astronaut()[::4, ::4][:96, :120].copy()).permute(2, 0, 1)[None].float() / 255


def _seam_ratio(diff: Tensor, starts: list[int], ends: list[int], dim: int) -> float:
    """Largest jump of ``diff`` across a tile edge over its mean jump elsewhere, along ``dim``."""
    jumps = diff.diff(dim=dim).abs().mean(dim=[d for d in range(4) if d != dim])
    edges = sorted({s - 1 for s in starts[1:]} | {e - 1 for e in ends[:-1]})
    others = [j for j in range(len(jumps)) if j not in edges]
    return float(jumps[edges].max() / jumps[others].mean())


@pytest.fixture(scope="module")
def tiny_laformer() -> LAformer:
    torch.manual_seed(0)
    return LAformer.from_preset("tiny", width=8).eval()


def test_real_laformer_tiles_blend_without_seams(tiny_laformer: LAformer) -> None:
    x = _photo()
    tile = 48
    with torch.no_grad():
        whole = tiny_laformer(x)
        blended = tiled_forward(tiny_laformer, x, tile=tile, overlap=16)
        hard = tiled_forward(tiny_laformer, x, tile=tile, overlap=0)  # no cross-fade: the control
    mse = (blended.clamp(0, 1) - whole.clamp(0, 1)).pow(2).mean()
    # dB: tiles see less context, but differ little from one pass. For this untrained network the figure depends on
    # the random draw: 39-51 dB over seeds 0-5 (and 43-51 dB with RELA's earlier initialisation), so the bound
    # leaves a margin under the lowest; the seam check below is the sharp one.
    assert -10 * torch.log10(mse) > 35
    for dim, length in ((3, x.shape[3]), (2, x.shape[2])):
        starts = tile_starts(length, tile, 16, 8)
        ratio = _seam_ratio(blended - whole, starts, tile_ends(starts, length, tile), dim)
        assert ratio < 2.0, f"a seam along dim {dim}: jump {ratio:.2f} x the typical one"
    starts = tile_starts(x.shape[3], tile, 0, 8)
    assert _seam_ratio(hard - whole, starts, tile_ends(starts, x.shape[3], tile), 3) > 3.0
