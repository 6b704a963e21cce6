"""Peer networks through the real training and evaluation entry points: ``model=nafnet model.preset=tiny``, etc."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from laformer.cli.evaluate import evaluate
from laformer.cli.train import train
from laformer.inference.checkpoint import load_checkpoint, load_network
from laformer.models import network_info
from laformer.models.peers import FAMILIES, PeerUnavailableError, build_peer, import_spandrel

try:
    import_spandrel()
except PeerUnavailableError as exc:  # the core suite works without the `peers` extra
    pytest.skip(str(exc), allow_module_level=True)

# The demo, cut down: two photos, small crops, two steps, one validation photo cropped to odd sides (45 x 45), so
# whole-image validation goes through each network's padding.
PEER_DEMO = [
    "experiment=demo",
    "logger=csv",
    "data.patch_size=32",
    "data.batch_size=2",
    "data.repeat=1",
    "data.val_photos=[coffee]",
    "data.val_crop=45",
    "data.test_photos=[]",
    "test_after_fit=false",
    "callbacks.anchors.methods=[]",
    "callbacks.image_grid=null",
    "callbacks.progress_bar=null",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
]


@pytest.mark.parametrize("arch", sorted(FAMILIES))
def test_train_a_peer_and_reload_its_checkpoint(make_cfg, arch: str) -> None:
    cfg = make_cfg("train", [*PEER_DEMO, f"model={arch}", "model.preset=tiny"])
    summary = train(cfg)
    assert summary["steps"] == 2 and summary["model"] == arch
    assert summary["metrics"]["val/psnr"] > 0 and summary["net"]["arch"] == arch
    net, config = load_network(summary["last_checkpoint"])
    assert network_info(net).family == arch and network_info(net).preset == "tiny"
    assert config["_target_"] == "laformer.models.peers.build_peer"
    state = load_checkpoint(summary["last_checkpoint"])["state_dict"]
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, state[f"net.{name}"], rtol=0, atol=0)


def test_laformer_eval_scores_a_published_pth(make_cfg, tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "NAFNet-tiny.pth"
    torch.save({"params": build_peer("nafnet", "tiny").model.state_dict()}, path)  # the authors' layout
    cfg = make_cfg(
        "eval",
        ["experiment=demo", "logger=csv", "data.val_photos=[coffee]", "data.val_crop=45", "data.test_photos=[]",
         "callbacks.anchors.methods=[]", f"ckpt_path={path}"],
        run_dir=tmp_path / "eval",
    )  # fmt: skip
    result = evaluate(cfg)
    assert result["family"] == "nafnet"
    scored = result["benchmarks"]["demo-val"]
    assert scored["images"] == 1 and 0 < scored["psnr"] < 60
    assert (tmp_path / "eval" / "metrics.csv").is_file()
