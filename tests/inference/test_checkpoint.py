"""Rebuilding the network from a checkpoint alone, and clear errors for checkpoints that cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from laformer.inference.checkpoint import CheckpointError, load_checkpoint, load_network
from laformer.models import LAformer


def test_network_rebuilt_from_stored_config(trained_ckpt: Path) -> None:
    net, config = load_network(trained_ckpt)
    assert isinstance(net, LAformer) and not net.training
    assert config["name"] == "tiny" and config["attention"] == "rela" and config["width"] == 8
    assert net.embed.out_channels == 8  # the stored width, not the preset's 16
    state = load_checkpoint(trained_ckpt)["state_dict"]
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, state[f"net.{name}"], rtol=0, atol=0)


def test_checkpoint_without_config_is_refused_by_name(tmp_path: Path, trained_ckpt: Path) -> None:
    checkpoint = load_checkpoint(trained_ckpt)
    del checkpoint["laformer_net_config"]
    bare = tmp_path / "bare.ckpt"
    torch.save(checkpoint, bare)
    with pytest.raises(CheckpointError, match=r"bare\.ckpt holds no network config"):
        load_network(bare)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt"):
        load_network(tmp_path / "nope.ckpt")
