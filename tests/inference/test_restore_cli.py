"""``laformer-restore`` on real files with a real checkpoint: formats, bit depths, failures, overwriting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from laformer.cli.restore import main
from laformer.data.io import read_array


def _photo(h: int, w: int, dtype: type = np.uint8) -> np.ndarray:
    """A smooth RGB gradient with noise, as uint8 or uint16."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * np.sin(6 * x * y)], axis=-1)
    image = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1)
    peak = np.iinfo(dtype).max
    return np.round(image * peak).astype(dtype)


def _write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    assert ok
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "in"
    files = {
        "png8": _write(folder / "a_rgb8.png", _photo(40, 52)),
        "png16": _write(folder / "b_rgb16.png", _photo(37, 45, np.uint16)),
        "jpg": _write(folder / "c_photo.JPG", _photo(48, 33)),
        "gray": _write(folder / "d_gray.png", _photo(32, 32)[..., 0]),
        "corrupt": folder / "e_broken.png",
    }
    files["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    tiff = tmp_path / "single" / "f_rgb16.tif"
    tiff.parent.mkdir()
    tifffile.imwrite(tiff, _photo(29, 61, np.uint16), photometric="rgb")
    files["tiff16"] = tiff
    return files


def test_restores_folder_and_file_keeping_size_depth_and_reporting_failures(
    tmp_path: Path, inputs: dict[str, Path], trained_ckpt: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code = main([str(inputs["png8"].parent), str(inputs["tiff16"]), "-o", str(out), "--ckpt", str(trained_ckpt)])
    err = capsys.readouterr().err
    assert code == 1  # some inputs failed
    for key in ("png8", "png16", "jpg", "tiff16", "gray"):
        source, target = read_array(inputs[key]), read_array(out / inputs[key].name)
        assert target.shape == source.shape, key
        assert target.dtype == source.dtype, key  # 16 bit in, 16 bit out
    assert not (out / inputs["corrupt"].name).exists()
    assert "e_broken.png" in err and "cannot decode" in err
    assert "5 restored, 0 skipped (output exists), 1 failed" in err
    assert not list(out.glob(".*partial*"))


def test_existing_outputs_are_kept_unless_overwrite(
    tmp_path: Path, inputs: dict[str, Path], trained_ckpt: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    args = [str(inputs["png8"]), str(inputs["png16"]), "-o", str(out), "--ckpt", str(trained_ckpt)]
    assert main(args) == 0
    restored = (out / inputs["png8"].name).read_bytes()
    sentinel = _write(out / inputs["png8"].name, np.zeros((40, 52, 3), np.uint8)).read_bytes()
    capsys.readouterr()

    assert main(args) == 0
    assert (out / inputs["png8"].name).read_bytes() == sentinel
    assert "0 restored, 2 skipped" in capsys.readouterr().err

    assert main([*args, "--overwrite"]) == 0
    assert (out / inputs["png8"].name).read_bytes() == restored
    assert "2 restored, 0 skipped" in capsys.readouterr().err


def test_tiled_restoration_through_the_cli(tmp_path: Path, inputs: dict[str, Path], trained_ckpt: Path) -> None:
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    common = [str(inputs["png8"]), "--ckpt", str(trained_ckpt)]
    assert main([*common, "-o", str(whole)]) == 0
    assert main([*common, "-o", str(tiled), "--tile", "24", "--tile-overlap", "8", "--tile-batch", "2"]) == 0
    a = read_array(whole / inputs["png8"].name).astype(float)
    b = read_array(tiled / inputs["png8"].name).astype(float)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 3  # 8-bit levels: tiles see less context but agree closely


def test_bad_options_fail_clearly(tmp_path: Path, inputs: dict[str, Path], trained_ckpt: Path, capsys) -> None:
    common = [str(inputs["png8"]), "-o", str(tmp_path / "out"), "--ckpt", str(trained_ckpt)]
    assert main([*common, "--precision", "fp16", "--device", "cpu"]) == 2
    assert "fp16 needs a CUDA or MPS device" in capsys.readouterr().err
    assert main([*common, "--tile", "30"]) == 2  # checked against the loaded network's size multiple
    assert "--tile must be a positive multiple of 8" in capsys.readouterr().err
    assert main([str(inputs["png8"]), "-o", str(tmp_path / "o2"), "--ckpt", str(tmp_path / "missing.ckpt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_missing_input_is_named_and_others_finish(tmp_path: Path, inputs: dict[str, Path], trained_ckpt: Path, capsys):
    out = tmp_path / "out"
    code = main([str(tmp_path / "nowhere.png"), str(inputs["jpg"]), "-o", str(out), "--ckpt", str(trained_ckpt)])
    assert code == 1
    assert "nowhere.png: no such file or folder" in capsys.readouterr().err
    assert (out / inputs["jpg"].name).is_file()


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning: 6-20 s on the shared CPU
def test_console_script_runs(tmp_path: Path, inputs: dict[str, Path], trained_ckpt: Path) -> None:
    script = Path(sys.executable).parent / "laformer-restore"
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(script), str(inputs["png16"]), "-o", str(out), "--ckpt", str(trained_ckpt), "--precision", "bf16"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 restored" in proc.stderr
    assert read_array(out / inputs["png16"].name).dtype == np.uint16


def test_grayscale_model_restores_16bit_grayscale(tmp_path: Path, inputs: dict[str, Path], capsys) -> None:
    """A grayscale network saved as Lightning saves a RestorationModule (``net.`` weights + the stored config)."""
    import torch

    from laformer.models import LAformer

    config = {"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "attention": "linear",
              "in_channels": 1, "width": 8}  # fmt: skip
    net = LAformer.from_preset("tiny", attention="linear", in_channels=1, width=8)
    ckpt = tmp_path / "gray.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "laformer_net_config": config, "global_step": 0}, ckpt)
    gray16 = _write(tmp_path / "in" / "g16.tif", _photo(35, 50, np.uint16)[..., 1])

    out = tmp_path / "out"
    assert main([str(gray16), str(inputs["png8"]), "-o", str(out), "--ckpt", str(ckpt)]) == 1
    restored = read_array(out / "g16.tif")
    assert restored.shape == (35, 50) and restored.dtype == np.uint16
    assert "a_rgb8.png is RGB (3 channels) but the model restores grayscale (1 channel)" in capsys.readouterr().err


def test_grey_photo_through_an_rgb_model_is_restored_as_grey_rgb(
    tmp_path: Path, inputs: dict[str, Path], trained_ckpt: Path
) -> None:
    """The grey file comes back grey, and equals the luma of restoring the same pixels as grey RGB."""
    import torch

    from laformer.data.io import array_to_tensor, tensor_to_array
    from laformer.inference import restore_image
    from laformer.inference.checkpoint import load_network

    out = tmp_path / "out"
    assert main([str(inputs["gray"]), "-o", str(out), "--ckpt", str(trained_ckpt), "--device", "cpu"]) == 0
    written = read_array(out / inputs["gray"].name)
    grey = read_array(inputs["gray"])
    assert written.shape == grey.shape == (32, 32) and written.dtype == np.uint8
    net, _ = load_network(trained_ckpt)
    rgb = restore_image(net, array_to_tensor(grey).expand(3, -1, -1))
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
    assert np.abs(written.astype(int) - tensor_to_array(luma).astype(int)).max() <= 1
    assert not np.array_equal(written, grey)  # it was restored, not copied
