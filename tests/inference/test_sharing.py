"""Sharing a model: the Hub-layout folder from ``laformer-export --format safetensors``, read back by every
reader (load_network, LAformer.from_pretrained, laformer-restore --model, torch.hub), offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.cli import export as export_cli
from laformer.cli import restore as restore_cli
from laformer.data.io import read_array, write_image
from laformer.inference.checkpoint import CheckpointError, load_network
from laformer.models import LAformer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, trained_ckpt: Path) -> Path:
    out = tmp_path_factory.mktemp("share") / "demo-tiny"
    assert export_cli.main(["--ckpt", str(trained_ckpt), "--format", "safetensors", "-o", str(out), "--check"]) == 0
    return out


def _outputs_equal(a: torch.nn.Module, b: torch.nn.Module) -> None:
    x = torch.rand(1, 3, 29, 37, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_folder_has_the_hub_layout_and_a_card_with_the_training_summary(folder: Path, trained_ckpt: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["width"] == 8 and config["attention"] == "rela"  # constructor arguments at the top level
    assert config["laformer"]["info"] == {**config["laformer"]["info"], "family": "laformer", "preset": "tiny"}
    summary = json.loads((trained_ckpt.parent.parent / "summary.json").read_text())
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: laformer" in card
    assert f"{summary['metrics']['val/psnr']:.3f}" in card and "laformer-restore photo.png" in card


def test_every_reader_gives_the_checkpoint_network(folder: Path, trained_ckpt: Path) -> None:
    reference, _ = load_network(trained_ckpt)
    from_folder, config = load_network(folder)
    assert config["_target_"].startswith("laformer.models.LAformer") and from_folder.info.preset == "tiny"
    _outputs_equal(reference, from_folder)
    _outputs_equal(reference, load_network(folder / "model.safetensors")[0])
    pretrained = LAformer.from_pretrained(folder)
    assert pretrained.info.preset == "tiny"
    _outputs_equal(reference, pretrained)


def test_torch_hub_local_entry_points(folder: Path, trained_ckpt: Path) -> None:
    net = torch.hub.load(str(REPO), "laformer_tiny", source="local", weights=str(folder))
    _outputs_equal(load_network(trained_ckpt)[0], net)
    untrained = torch.hub.load(str(REPO), "laformer_small", source="local", attention="linear")
    assert untrained.info.preset == "small" and untrained.attention == "linear"
    with pytest.raises(ValueError, match="not laformer base"):
        torch.hub.load(str(REPO), "laformer_base", source="local", weights=str(folder))


def test_restore_with_model_folder_matches_checkpoint(folder: Path, trained_ckpt: Path, tmp_path: Path) -> None:
    photo = tmp_path / "in" / "p.png"
    write_image(photo, torch.rand(3, 30, 41, generator=torch.Generator().manual_seed(0)))
    assert restore_cli.main([str(photo), "-o", str(tmp_path / "a"), "--model", str(folder), "--device", "cpu"]) == 0
    assert (
        restore_cli.main([str(photo), "-o", str(tmp_path / "b"), "--ckpt", str(trained_ckpt), "--device", "cpu"]) == 0
    )
    np.testing.assert_array_equal(read_array(tmp_path / "a" / "p.png"), read_array(tmp_path / "b" / "p.png"))


def test_broken_folders_get_one_line(folder: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_bytes((folder / "config.json").read_bytes())
    (truncated / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is truncated or corrupt"):
        load_network(truncated)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    config = json.loads((folder / "config.json").read_text())
    config["laformer"]["net_config"] = {"_target_": "subprocess.run", "args": ["touch", str(tmp_path / "pwned")]}
    (foreign / "config.json").write_text(json.dumps(config))
    (foreign / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="not a model family"):
        load_network(foreign)
    assert not (tmp_path / "pwned").exists()

    with pytest.raises(CheckpointError, match=r"without config\.json"):
        load_network(tmp_path / "truncated" / "..")  # tmp_path itself: a folder, but no model in it


def test_export_refuses_to_fill_an_unrelated_folder(trained_ckpt: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert export_cli.main(["--ckpt", str(trained_ckpt), "--format", "safetensors", "-o", str(tmp_path)]) == 2
    assert "is not a model folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
