"""The restore function behind the web page, without gradio: same pixels as laformer-restore, degradations,
PSNR, progress, the model card and the messages for bad uploads."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from laformer.app.service import (
    BUNDLED_PHOTOS,
    AppError,
    Degradation,
    Request,
    RestoreOptions,
    Restorer,
    bundled_photo,
    degradation_from_training,
    handle_request,
    read_upload,
    score_psnr,
)
from laformer.cli import restore as restore_cli
from laformer.data.io import read_array, write_array
from tests.app.conftest import photo


@pytest.fixture(scope="module")
def restorer(trained_ckpt: Path) -> Restorer:
    return Restorer.from_path(trained_ckpt, RestoreOptions(device="cpu", max_pixels=200_000))


def laformer_restore(source: Path, out_dir: Path, ckpt: Path, *extra: str) -> Path:
    assert restore_cli.main([str(source), "-o", str(out_dir), "--ckpt", str(ckpt), "--device", "cpu", *extra]) == 0
    return out_dir / source.name


@pytest.mark.parametrize("name", ["rgb8.png", "rgb16.tif", "grey8.png", "grey16.png", "rgb8.jpg"])
def test_same_result_as_laformer_restore(name, photos, restorer, trained_ckpt, tmp_path):
    expected_file = laformer_restore(photos[name], tmp_path / "cli", trained_ckpt)
    restoration, files = handle_request(restorer, Request(upload=photos[name]), tmp_path / "app")

    got, source = read_array(files.result), read_array(photos[name])
    assert got.shape == source.shape and got.dtype == source.dtype
    np.testing.assert_array_equal(got, restoration.restored)
    if expected_file.suffix == ".jpg":
        # laformer-restore keeps the JPEG format; the app offers a lossless PNG. Encoded alike, they are one file.
        write_array(tmp_path / "app.jpg", restoration.restored)
        assert (tmp_path / "app.jpg").read_bytes() == expected_file.read_bytes()
        assert files.result.suffix == ".png"
    else:
        np.testing.assert_array_equal(got, read_array(expected_file))
        assert files.result.suffix == expected_file.suffix  # PNG or TIFF, 8 or 16 bit, as the input
        assert files.result.read_bytes() == expected_file.read_bytes()  # the same writer: the same bytes
    assert restoration.psnr_restored is None  # an upload as it is has no clean reference


def test_tiles_same_result_as_laformer_restore(photos, trained_ckpt, tmp_path):
    tiled = Restorer.from_path(trained_ckpt, RestoreOptions(device="cpu", tile=32, tile_overlap=8))
    expected = read_array(
        laformer_restore(photos["rgb8.png"], tmp_path, trained_ckpt, "--tile", "32", "--tile-overlap", "8")
    )
    updates: list[tuple[float | None, str]] = []
    restoration = tiled.restore(
        read_array(photos["rgb8.png"]), "rgb8.png", progress=lambda f, t: updates.append((f, t))
    )
    np.testing.assert_array_equal(restoration.restored, expected)
    # 72 x 96 in 32-pixel tiles overlapping by 8: 3 x 4 tiles, each one forward pass, each reported.
    fractions = [f for f, _ in updates[1:]]
    assert len(fractions) == 12 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert "tile 12 of 12" in updates[-1][1]


def test_degradation_gives_a_clean_reference_and_psnr(restorer, tmp_path):
    noise = Degradation("noise", noise_sigma=25, seed=3)
    first, files = handle_request(restorer, Request(photo="chelsea", degradation=noise), tmp_path / "a")
    again, _ = handle_request(restorer, Request(photo="chelsea", degradation=noise), tmp_path / "b")
    other, _ = handle_request(
        restorer, Request(photo="chelsea", degradation=Degradation("noise", seed=4)), tmp_path / "c"
    )

    assert first.clean is not None and first.clean.shape == (300, 451, 3)
    # sigma 25 noise, clipped and 8-bit: about 20.2 dB (20.17 unclipped)
    assert 19.5 < first.psnr_input < 21.5
    assert first.psnr_restored == pytest.approx(score_psnr(first.restored, first.clean))
    np.testing.assert_array_equal(first.degraded, again.degraded)  # seeded
    assert not np.array_equal(first.degraded, other.degraded)
    np.testing.assert_array_equal(read_array(files.before), first.degraded)  # the slider's "before" is the input


@pytest.mark.parametrize("kind", ["blur", "jpeg"])
def test_other_degradations_change_the_photo(kind, photos):
    clean = read_array(photos["rgb16.tif"])
    degraded = Degradation(kind, blur_sigma=2.0, jpeg_quality=10).apply(clean)
    assert degraded.shape == clean.shape and degraded.dtype == clean.dtype
    assert 15 < score_psnr(degraded, clean) < 45


def test_bundled_photos_held_out_ones_first():
    from laformer.data.demo import DEMO_TEST

    assert BUNDLED_PHOTOS[: len(DEMO_TEST)] == DEMO_TEST and len(set(BUNDLED_PHOTOS)) == len(BUNDLED_PHOTOS)
    for name in BUNDLED_PHOTOS:
        rgb, grey = bundled_photo(name, in_channels=3), bundled_photo(name, in_channels=1)
        assert rgb.dtype == np.uint8 and rgb.ndim in (2, 3) and grey.ndim == 2
        assert grey.shape == rgb.shape[:2]
    with pytest.raises(AppError, match="unknown bundled photo"):
        bundled_photo("hubble", 3)


def test_model_card_from_the_run_folder(restorer, trained_ckpt):
    card = restorer.card
    rows = dict(card.rows())
    assert rows["family"] == "laformer" and rows["attention"] == "rela" and rows["preset"] == "tiny"
    assert card.parameters == sum(p.numel() for p in restorer.net.parameters()) > 0
    summary = json.loads((trained_ckpt.parent.parent / "summary.json").read_text())
    assert card.summary == summary and rows["training steps"] == str(summary["steps"]) == "2"
    # the demo trains for Gaussian noise, sigma 25: the page offers that degradation first
    assert card.trained_degradation == Degradation("noise", noise_sigma=25.0)
    assert "Gaussian noise, sigma 25" in rows["trained for"]


def test_model_card_from_a_model_folder(trained_ckpt, tmp_path):
    model_folder = pytest.importorskip("laformer.inference.model_folder")
    from laformer.inference.checkpoint import load_network

    net, config = load_network(trained_ckpt)
    summary = json.loads((trained_ckpt.parent.parent / "summary.json").read_text())
    folder = model_folder.save_model_folder(net, config, tmp_path / "model", summary=summary)
    from_folder = Restorer.from_path(folder, RestoreOptions(device="cpu"))
    card = from_folder.card
    assert card.summary == json.loads(json.dumps(summary, default=str))
    assert dict(card.rows())["family"] == "laformer"
    # the folder's network restores as the checkpoint's does
    from_ckpt = Restorer.from_path(trained_ckpt, RestoreOptions(device="cpu"))
    pixels = photo(40, 48)
    np.testing.assert_array_equal(
        from_folder.restore(pixels, "a.png").restored, from_ckpt.restore(pixels, "a.png").restored
    )


def test_trained_degradation_is_read_as_data():
    assert degradation_from_training({"_target_": "laformer.data.degradations.JpegCompression", "quality": 30}) == (
        Degradation("jpeg", jpeg_quality=30.0)
    )
    assert degradation_from_training({"_target_": "os.system", "command": "x"}) is None
    assert degradation_from_training({"_target_": "laformer.data.degradations.GaussianNoise", "sigma": "oops"}) is None


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels but which holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")
    )


def test_bad_uploads_say_what_is_wrong(restorer, photos, grey_ckpt, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a photo")
    with pytest.raises(AppError, match=r"notes\.png cannot be read as an image"):
        read_upload(text, 200_000)
    other = tmp_path / "notes.txt"
    other.write_text("not a photo")
    with pytest.raises(AppError, match="not a PNG, JPEG, TIFF or BMP"):
        read_upload(other, 200_000)
    big = tmp_path / "big.png"
    write_array(big, photo(500, 500))
    with pytest.raises(
        AppError, match=r"big\.png is 500 x 500 \(250,000 pixels\); .* at most 200,000 pixels \(its --max-pixels\)"
    ):
        handle_request(restorer, Request(upload=big), tmp_path / "r")
    # sizes come from the header, before decoding: a 60-byte file claiming 1000 x 1000, or 20000 x 20000, pixels
    for side, message in ((1000, r"claims\.png is 1000 x 1000 \(1\.0 Mpx\)"), (20000, "far larger than")):
        claims = tmp_path / "claims.png"
        claims.write_bytes(png_header_only(side, side))
        with pytest.raises(AppError, match=message):
            read_upload(claims, 200_000)
    float_tiff = tmp_path / "float.tif"
    import tifffile

    tifffile.imwrite(float_tiff, np.zeros((16, 16, 3), np.float32))
    with pytest.raises(AppError, match=r"float\.tif cannot be read"):
        read_upload(float_tiff, 200_000)

    grey_model = Restorer.from_path(grey_ckpt, RestoreOptions(device="cpu"))
    with pytest.raises(AppError, match=r"rgb8\.png is RGB \(3 channels\) but the model restores grayscale"):
        handle_request(grey_model, Request(upload=photos["rgb8.png"]), tmp_path / "g")
    # the same model takes a grey photo, and a bundled colour photo is made grey for it
    assert handle_request(grey_model, Request(upload=photos["grey8.png"]), tmp_path / "g2")[0].restored.ndim == 2
    assert handle_request(grey_model, Request(photo="coffee"), tmp_path / "g3")[0].restored.shape == (400, 600)
    with pytest.raises(AppError, match="upload a photo or pick a bundled one"):
        handle_request(restorer, Request(), tmp_path / "e")


def test_request_folders_are_separate(restorer, tmp_path):
    from laformer.app.service import RequestFolders

    folders = RequestFolders(tmp_path / "requests")
    a, b = folders.new(), folders.new()
    assert a != b and a.parent == b.parent == tmp_path / "requests"
