"""``laformer-data pack``: a real GoPro-layout folder packed into a LitData store, read back by training's own code."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.cli.data import build_datamodule, main
from laformer.data.io import write_array
from laformer.data.store import MANIFEST, PixelPolicy, StoreError, check_store
from tests.data.packed_common import gopro_overrides, write_gopro

pytest.importorskip("litdata", reason="packed stores need the stream extra (pyproject.toml)")


@pytest.fixture
def gopro(tmp_path: Path) -> Path:
    return write_gopro(tmp_path / "data")


def pack_cli(root: Path, store: Path, *extra: str) -> int:
    return main(["pack", *gopro_overrides(root), "--out", str(store), "--chunk-pairs", "4", *extra])


def first_epoch(overrides: list[str]) -> list[dict]:
    torch.manual_seed(7)  # the run's seed: training_seed() takes torch's
    module = build_datamodule(overrides)
    module.setup("fit")
    return list(module.train_dataloader())


def test_packed_store_gives_the_same_training_items_as_the_image_files(gopro: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    assert pack_cli(gopro, store) == 0
    out = capsys.readouterr().out
    assert f"packed store {store}: 6 pairs of GoPro train" in out and "of image files" in out
    files = first_epoch(gopro_overrides(gopro, "data.batch_size=2", "data.num_workers=0", "data.repeat=2"))
    packed = first_epoch(
        gopro_overrides(
            gopro, "data.batch_size=2", "data.num_workers=0", "data.repeat=2", "data.store=packed",
            f"data.store_path={store}",
        )
    )  # fmt: skip
    assert len(files) == len(packed) == 6
    for a, b in zip(files, packed):
        assert a["name"] == b["name"] and torch.equal(a["seed"], b["seed"])
        assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
        assert a["input"].shape == (2, 3, 16, 16) and a["input"].dtype == torch.float32


def test_packing_resumes_after_an_interruption_and_keeps_what_was_written(gopro: Path, tmp_path: Path) -> None:
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert pack_cli(gopro, whole) == 0
    module = build_datamodule(gopro_overrides(gopro))
    _, content = module.content("gopro", "train")
    calls = []

    def stop_after_first_chunk(done: int, total: int) -> None:
        calls.append(done)
        if done >= 4:
            raise KeyboardInterrupt

    from laformer.data.store import pack

    with pytest.raises(KeyboardInterrupt):
        pack(content.pairs, stopped, module.store_policy(), chunk_pairs=4, progress=stop_after_first_chunk)
    first = json.loads((stopped / MANIFEST).read_text())
    assert first["status"] == "packing" and list(first["chunks"]) == ["0"]
    (stopped / "chunk-0-1.bin").write_bytes(b"half a chunk")  # what a kill mid-write leaves
    with pytest.raises(StoreError, match=r"is partial \(4 of 6 pairs packed.*finish it with the same command"):
        check_store(stopped)
    assert pack_cli(gopro, stopped) == 0
    done = json.loads((stopped / MANIFEST).read_text())
    assert done["chunks"]["0"] == first["chunks"]["0"]  # the chunk written before the stop was kept, not rewritten
    reference = json.loads((whole / MANIFEST).read_text())
    assert [c["sha256"] for c in done["chunks"].values()] == [c["sha256"] for c in reference["chunks"].values()]
    assert sorted(p.name for p in stopped.iterdir()) == sorted(p.name for p in whole.iterdir())


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_stores_are_refused_in_one_line_naming_the_store_and_the_fix(gopro: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    assert pack_cli(gopro, store) == 0
    capsys.readouterr()
    packed = ["data.store=packed", f"data.store_path={store}"]

    def refusal(*extra: str, module_overrides: list[str] | None = None) -> str:
        module = build_datamodule(module_overrides or gopro_overrides(gopro, *packed, *extra))
        with pytest.raises(StoreError) as error:
            module.setup("fit")
        text = str(error.value)
        assert "\n" not in text and str(store) in text
        return text

    # a store built for another crop policy: the training patch is larger than its images
    assert "smaller than the training patch 64x64; lower data.patch_size" in refusal("data.patch_size=64")
    # a store built from another dataset or pixel policy
    other = PixelPolicy("gopro", "train", False, "center_crop_target")
    with pytest.raises(StoreError, match=r"holds data=gopro .*targets as stored.* asks for .*centre-cropped"):
        check_store(store, other)
    with pytest.raises(StoreError, match=r"holds data=gopro .* asks for data=realblur_j"):
        check_store(store, PixelPolicy("realblur_j", "train", False, "none"))
    # a chunk whose size no longer matches the manifest, then a missing chunk
    chunk = store / "chunk-0-1.bin"
    original = chunk.read_bytes()
    chunk.write_bytes(original[:-10])
    assert "chunk chunk-0-1.bin does not match the manifest" in refusal()
    chunk.unlink()
    assert "chunk chunk-0-1.bin is missing; run the packing again to repack it" in refusal()
    # the packing repairs it: only the missing chunk is written again
    assert pack_cli(gopro, store) == 0 and chunk.read_bytes() == original
    # a manifest that does not match its chunks (LitData's index changed behind it)
    index = json.loads((store / "index.json").read_text())
    (store / "index.json").write_text(json.dumps({**index, "chunks": index["chunks"][:1]}))
    assert "its manifest does not match its chunks" in refusal()
    # the command line: exit 2 and one line, for a folder that is not a store
    capsys.readouterr()
    not_a_store = tmp_path / "photos"
    not_a_store.mkdir()
    (not_a_store / "holiday.jpg").write_bytes(b"x")
    assert pack_cli(gopro, not_a_store) == 2
    assert "holds other files and no manifest.json; give --out an empty or new folder" in one_line(capsys)
    # packing another dataset's pairs into an existing store
    write_gopro(tmp_path / "other", frames=2, seed=3)
    assert pack_cli(tmp_path / "other", store) == 2
    assert f"packed store {store} holds data=gopro" in one_line(capsys)


def test_verify_checks_the_store_checksums(gopro: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    assert pack_cli(gopro, store) == 0
    verify = ["verify", *gopro_overrides(gopro, "data.store=packed", f"data.store_path={store}")]
    assert main(verify) == 0
    assert "6 pairs in 2 chunks, uint8, smallest 40x56" in capsys.readouterr().out
    chunk = store / "chunk-0-0.bin"
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes: only the checksum sees it
    chunk.write_bytes(bytes(data))
    assert main([*verify, "--quick"]) == 0
    capsys.readouterr()
    assert main(verify) == 1
    assert "chunk chunk-0-0.bin does not match the manifest (its checksum differs)" in capsys.readouterr().out


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


def test_a_disk_that_fills_while_packing_keeps_the_chunks_already_written(tmp_path: Path, capsys) -> None:
    data = write_gopro(tmp_path / "data", scenes=2, frames=4, size=(64, 96))  # 8 pairs of 36 KiB, 4 chunks
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "100k"):
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        store = disk / "store"
        assert main(["pack", *gopro_overrides(data), "--out", str(store), "--chunk-pairs", "2"]) == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith("laformer-data: error: the disk is full") and str(store) in line
        assert "are kept; free some space and run the same command to continue" in line
        kept = json.loads((store / MANIFEST).read_text())
        assert kept["status"] == "packing" and 0 < len(kept["chunks"]) < 4
        assert not list(store.glob("*.tmp")) and len(list(store.glob("chunk-*.bin"))) == len(kept["chunks"])
        subprocess.run(["mount", "-o", "remount,size=2m", str(disk)], check=True)
        assert main(["pack", *gopro_overrides(data), "--out", str(store), "--chunk-pairs", "2"]) == 0
        done = json.loads((store / MANIFEST).read_text())
        assert all(done["chunks"][key] == chunk for key, chunk in kept["chunks"].items())
        check_store(store, checksums=True)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
        shutil.rmtree(disk, ignore_errors=True)


def write_pairs(folder_in: Path, folder_out: Path, names: list[tuple[str, str]], bit_depth: int, grow: int = 0) -> None:
    """Random pairs (target ``grow`` pixels larger on each side, as RESIDE's clear images are)."""
    rng = np.random.default_rng(5)
    peak = 255 if bit_depth == 8 else 65535
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    for stem_in, stem_out in names:
        write_array(folder_in / f"{stem_in}.png", rng.integers(0, peak + 1, (40, 48, 3)).astype(dtype))
        size = (40 + 2 * grow, 48 + 2 * grow, 3)
        write_array(folder_out / f"{stem_out}.png", rng.integers(0, peak + 1, size).astype(dtype))


@pytest.mark.parametrize("case", ["dpdd-dual-pixel-16bit", "reside-centre-crop"])
def test_every_pixel_policy_packs_to_the_same_items(case: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    if case.startswith("dpdd"):
        names = [(str(i), str(i)) for i in range(3)]
        for split in ("train", "val"):
            for view in ("inputC", "inputL", "inputR"):
                write_pairs(root / "DPDD" / split / view, root / "DPDD" / split / "target", names, 16)
        base = ["data=dpdd", f"data.root={root}", "data.test_sets=[dpdd]", "data.dual_pixel=true"]
    else:
        names = [(f"{i}_1", str(i)) for i in range(3)]
        write_pairs(root / "ITS" / "hazy", root / "ITS" / "clear", names, 8, grow=5)
        write_pairs(root / "SOTS" / "indoor" / "hazy", root / "SOTS" / "indoor" / "clear", names, 8, grow=5)
        base = ["data=reside_its", f"data.root={root}", "data.test_sets=[]"]
    base += ["data.patch_size=16", "data.batch_size=1", "data.num_workers=0", "data.repeat=2"]
    store = tmp_path / "store"
    assert main(["pack", *base, "--out", str(store), "--chunk-pairs", "2"]) == 0
    files = first_epoch(base)
    packed = first_epoch([*base, "data.store=packed", f"data.store_path={store}"])
    assert len(files) == len(packed) == 6
    for a, b in zip(files, packed):
        assert a["name"] == b["name"] and torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    channels = 6 if case.startswith("dpdd") else 3
    assert files[0]["input"].shape == (1, channels, 16, 16)
    manifest = json.loads((store / MANIFEST).read_text())
    assert manifest["dtype"] == ("uint16" if case.startswith("dpdd") else "uint8")
    assert manifest["target_crop"] == ("none" if case.startswith("dpdd") else "center_crop_target")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["data.store=packed"], "data.store=packed needs data.store_path: the folder laformer-data pack wrote"),
        (["data.store=disk"], "data.store must be one of ('files', 'packed', 'streaming'), got 'disk'"),
        (["data.store=packed", "data.store_path=s3://bucket/gopro"], "stream a URL with data.store=streaming"),
    ],
)
def test_store_settings_are_checked_in_one_line(gopro: Path, capsys, extra: list[str], message: str) -> None:
    assert main(["verify", *gopro_overrides(gopro, *extra)]) == 2
    assert message in one_line(capsys)


def test_a_store_url_is_accepted_for_streaming(gopro: Path) -> None:
    module = build_datamodule(gopro_overrides(gopro, "data.store=streaming", "data.store_path=s3://bucket/gopro"))
    assert module.checked_store() is None  # LitData reads a URL's index itself; our manifest checks need a folder
    assert module.packed_train_dataset().planes == 1
