"""Files from other people are data: no code runs while loading them, and bad files get one clear line.

Each case goes through the real entry points that read a shared file (laformer-restore, laformer-export,
laformer-eval) as well as the library call.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.cli import export as export_cli
from laformer.cli import restore as restore_cli
from laformer.data.io import write_image
from laformer.inference.checkpoint import CheckpointError, load_checkpoint, load_network
from laformer.models import UntrustedConfigError, build_network


class TouchFile:
    """Unpickling this object creates a file: proof that the loader ran code from the checkpoint."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "photo.png"
    rng = np.random.default_rng(0)
    write_image(path, torch.from_numpy(rng.random((3, 24, 32), dtype=np.float32)))
    return path


@pytest.fixture
def payload_ckpt(tmp_path: Path, trained_ckpt: Path) -> tuple[Path, Path]:
    """A real checkpoint with a code-running object added beside its weights, and the file it would touch."""
    witness = tmp_path / "pwned"
    checkpoint = load_checkpoint(trained_ckpt)
    checkpoint["extra"] = TouchFile(witness)
    path = tmp_path / "shared.ckpt"
    torch.save(checkpoint, path)
    return path, witness


@pytest.fixture
def truncated_ckpt(tmp_path: Path, trained_ckpt: Path) -> Path:
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(trained_ckpt.read_bytes()[:100_000])
    return path


@pytest.fixture
def foreign_target_ckpt(tmp_path: Path, trained_ckpt: Path) -> tuple[Path, Path]:
    """A weights-only-loadable checkpoint whose network config names arbitrary code (``os.system``)."""
    witness = tmp_path / "pwned_target"
    checkpoint = load_checkpoint(trained_ckpt)
    checkpoint["laformer_net_config"] = {"_target_": "os.system", "command": f"touch {witness}"}
    path = tmp_path / "foreign.ckpt"
    torch.save(checkpoint, path)
    return path, witness


def test_payload_is_not_executed_by_the_loader(payload_ckpt: tuple[Path, Path]) -> None:
    path, witness = payload_ckpt
    with pytest.raises(CheckpointError, match=r"shared\.ckpt .*could run code"):
        load_network(path)
    assert not witness.exists()


@pytest.mark.parametrize("cli", ["restore", "export"])
def test_payload_is_refused_by_the_clis(
    cli: str, payload_ckpt: tuple[Path, Path], photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path, witness = payload_ckpt
    if cli == "restore":
        status = restore_cli.main([str(photo), "-o", str(tmp_path / "out"), "--ckpt", str(path)])
    else:
        status = export_cli.main(["--ckpt", str(path), "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert status == 2 and not witness.exists()
    assert "shared.ckpt" in err and "could run code" in err and "Traceback" not in err


def test_truncated_checkpoint_gets_one_line(
    truncated_ckpt: Path, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(CheckpointError, match=r"truncated\.ckpt \(100,000 bytes\) is truncated"):
        load_network(truncated_ckpt)
    status = restore_cli.main([str(photo), "-o", str(tmp_path / "out"), "--ckpt", str(truncated_ckpt)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "truncated.ckpt" in err and "copy it again" in err
    assert not (tmp_path / "out" / "photo.png").exists()


def test_foreign_target_is_never_called(foreign_target_ckpt: tuple[Path, Path], capsys) -> None:
    path, witness = foreign_target_ckpt
    with pytest.raises(CheckpointError, match=r"'os\.system' is not a model family"):
        load_network(path)
    assert export_cli.main(["--ckpt", str(path)]) == 2
    assert "not a model family" in capsys.readouterr().err
    assert not witness.exists()


@pytest.mark.parametrize(
    "config",
    [
        {"_target_": "builtins.eval", "source": "1"},
        {"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "_partial_": True},
        {"_target_": "laformer.models.LAformer.from_preset", "name": {"_target_": "os.getcwd"}},
        {"_target_": "laformer.models.LAformer", "width": object()},
    ],
    ids=["foreign", "partial", "nested", "object"],
)
def test_build_network_refuses_anything_but_plain_registered_configs(config: dict) -> None:
    with pytest.raises(UntrustedConfigError):
        build_network(config, source="test.json")


def test_registered_config_builds_with_its_descriptor() -> None:
    net = build_network({"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "width": 8})
    assert net.info.family == "laformer" and net.info.preset == "tiny" and net.info.size_multiple == 8
    assert net.embed.out_channels == 8


def test_laformer_eval_refuses_the_payload(payload_ckpt: tuple[Path, Path], tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from laformer.cli.evaluate import evaluate
    from laformer.runs import config_dir

    path, witness = payload_ckpt
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={path}", f"paths.output_dir={tmp_path / 'eval'}"])
    with pytest.raises(CheckpointError, match="could run code"):
        evaluate(cfg)
    assert not witness.exists()
