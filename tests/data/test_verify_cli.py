"""``laformer-data verify data=NAME data.root=PATH`` and ``laformer-data list`` on real folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from laformer.cli.data import main
from laformer.data import REGISTRY
from tests.data.coded import write_coded


def test_verify_reports_pairs_sizes_bit_depth_and_layout(tmp_path: Path, capsys) -> None:
    for split in ("train", "test"):
        for scene in ("GOPR0372_07_00", "GOPR0374_11_01"):
            for i, frame in enumerate(("000001", "000002")):
                write_coded(tmp_path / "GOPRO_Large" / split / scene / "blur" / f"{frame}.png", i, False)
                write_coded(tmp_path / "GOPRO_Large" / split / scene / "sharp" / f"{frame}.png", i, True)
    code = main(["verify", "data=gopro", f"data.root={tmp_path}", "data.test_sets=[gopro]", "data.patch_size=16"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    train = next(line for line in lines if line.strip().startswith("train"))
    assert "4 pairs" in train and "24x32" in train and "8-bit" in train and "RGB" in train
    assert "layout 'official'" in out and str(tmp_path / "GOPRO_Large") in out
    assert "centre 256x256" in out  # the declared validation split
    assert "GoPro: RGB, border 0" in out
    assert out.rstrip().endswith("OK: every split found and readable.")


def test_verify_reports_16_bit_images(tmp_path: Path, capsys) -> None:
    for split in ("train", "val", "test"):
        write_coded(tmp_path / "DPDD" / split / "inputC" / "1.png", 0, False, bit_depth=16)
        write_coded(tmp_path / "DPDD" / split / "target" / "1.png", 0, True, bit_depth=16)
    assert main(["verify", "data=dpdd", f"data.root={tmp_path}", "data.patch_size=16", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "16-bit" in out and "layout 'restormer'" in out


def test_verify_says_exactly_what_is_missing_and_where_to_get_it(tmp_path: Path, capsys) -> None:
    write_coded(tmp_path / "Rain13K" / "input" / "1.png", 0, False)
    write_coded(tmp_path / "Rain13K" / "target" / "1.png", 0, True)
    write_coded(tmp_path / "Rain100L" / "input" / "1.png", 0, False)
    write_coded(tmp_path / "Rain100L" / "target" / "1.png", 0, True)
    assert main(["verify", "data=rain13k", f"data.root={tmp_path}", "data.patch_size=16"]) == 1
    out = capsys.readouterr().out
    assert "1 pairs" in out
    missing = [line for line in out.splitlines() if line.startswith("  test") and "MISSING" in line]
    assert len(missing) == 4  # Rain100H, Test100, Test1200, Test2800
    assert any("Rain100H" in line for line in missing)
    assert "test/Rain100H/input" in out and "github.com/swz30/Restormer" in out
    assert "data.test_sets=" in out


def test_list_names_every_dataset(capsys) -> None:
    assert main(["list"]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert names == set(REGISTRY)


def test_demo_needs_no_verification(capsys) -> None:
    assert main(["verify", "data=demo"]) == 0
    assert "bundled" in capsys.readouterr().out


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning: ~20 s on a loaded 2-core machine
def test_installed_script_lists_every_dataset() -> None:
    script = Path(sys.executable).parent / "laformer-data"
    result = subprocess.run([str(script), "list"], capture_output=True, text=True, timeout=120, check=True)
    names = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert names == set(REGISTRY)
