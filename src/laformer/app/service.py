"""What the web demo does to a photo, without gradio.

Read and check an upload (or take a bundled photo), optionally degrade a clean photo the way the model was trained
for (so a person without a noisy photo can try it, and the PSNR against the clean photo is known), restore it
through :func:`laformer.inference.restore.restore_array` exactly as ``laformer-restore`` does, and write the files
the page shows and offers for download into a folder of the request's own.

Every message meant for the person at the page is raised as :class:`AppError` (one line, saying what to do).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from laformer.data.degradations import GaussianBlur, GaussianNoise, JpegCompression
from laformer.data.demo import BUNDLED_PHOTOS as BUNDLED_PHOTO_NOTES
from laformer.data.demo import DEMO_TEST, load_demo_photo
from laformer.data.io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    ImageTooLargeError,
    array_to_tensor,
    join_alpha,
    megapixels,
    read_array,
    read_header,
    split_alpha,
    tensor_to_array,
    write_array,
)
from laformer.inference.backends import DEFAULT_SHAPES, check_backend, inference_network
from laformer.inference.checkpoint import load_network
from laformer.inference.restore import (
    ChannelMismatchError,
    check_precision,
    is_out_of_memory,
    pick_device,
    prepare_network,
    restore_array,
)
from laformer.inference.tiling import check_tiles, tile_count
from laformer.metrics import EvalProtocol, psnr
from laformer.metrics.image_metrics import prepare_for_scoring
from laformer.models.registry import network_info
from laformer.runs import read_summary, summary_path

DEFAULT_MAX_PIXELS = 3840 * 2160  # a 4K UHD photo
# Bundled photos (scikit-image, no download), the demo's held-out test photos first: nothing was trained or
# tuned on them.
BUNDLED_PHOTOS = (*DEMO_TEST, *(name for name in BUNDLED_PHOTO_NOTES if name not in DEMO_TEST))
DEGRADATION_KINDS = ("none", "noise", "blur", "jpeg")
# The scored PSNR: RGB (or grey), whole image, on the file's own pixels (already 8 or 16 bit).
SCORING = EvalProtocol(color="rgb", crop_border=0, quantize=False)

Progress = Callable[[float | None, str], None]


class AppError(ValueError):
    """A request the app cannot serve; the message is shown in the page as it is."""


# --------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RestoreOptions:
    """How the server restores every photo (the ``laformer-app`` options, as ``laformer-restore`` names them)."""

    device: str = "auto"
    precision: str = "fp32"
    tile: int | None = None
    tile_overlap: int = 32
    tile_batch: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    backend: str = "torch"
    compile: str = "auto"
    compile_shapes: str = DEFAULT_SHAPES


@dataclass(frozen=True)
class Degradation:
    """A synthetic degradation put on a clean photo before restoring it (``kind`` ``none`` leaves it)."""

    kind: str = "none"
    noise_sigma: float = 25.0
    blur_sigma: float = 2.0
    blur_kernel: int = 15
    blur_noise: float = 0.0
    jpeg_quality: float = 20.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in DEGRADATION_KINDS:
            raise AppError(f"unknown degradation {self.kind!r}; choose one of {', '.join(DEGRADATION_KINDS)}")
        if self.kind == "noise" and not 0 < self.noise_sigma <= 255:
            raise AppError(f"noise sigma must be in (0, 255], got {self.noise_sigma}")
        if self.kind == "blur" and not 0 < self.blur_sigma <= 20:
            raise AppError(f"blur sigma must be in (0, 20], got {self.blur_sigma}")
        if self.kind == "jpeg" and not 1 <= self.jpeg_quality <= 100:
            raise AppError(f"JPEG quality must be in [1, 100], got {self.jpeg_quality}")

    def describe(self) -> str:
        return {
            "none": "none",
            "noise": f"Gaussian noise, sigma {self.noise_sigma:g} (0-255 scale)",
            "blur": f"Gaussian blur, sigma {self.blur_sigma:g} px"
            + (f", then noise sigma {self.blur_noise:g}" if self.blur_noise else ""),
            "jpeg": f"JPEG, quality {self.jpeg_quality:g}",
        }[self.kind]

    def apply(self, clean: np.ndarray) -> np.ndarray:
        """The degraded photo as file pixels (same shape and dtype as ``clean``), seeded by ``seed``; an alpha
        channel is kept as it is, like the restoration keeps it."""
        if self.kind == "none":
            return clean
        colour, alpha = split_alpha(clean)
        return join_alpha(self._degrade(colour), alpha)

    def _degrade(self, clean: np.ndarray) -> np.ndarray:
        if self.kind == "noise":
            degrade = GaussianNoise(self.noise_sigma, clip=True)
        elif self.kind == "blur":
            kernel = max(self.blur_kernel, 2 * math.ceil(3 * self.blur_sigma) + 1) | 1  # odd, >= 3 sigma each side
            degrade = GaussianBlur(self.blur_sigma, kernel_size=kernel, noise_sigma=self.blur_noise)
        else:
            degrade = JpegCompression(self.jpeg_quality)
        generator = torch.Generator().manual_seed(int(self.seed))
        degraded = degrade(array_to_tensor(clean).unsqueeze(0), generator)[0]
        return tensor_to_array(degraded.clamp(0, 1), bit_depth=16 if clean.dtype == np.uint16 else 8)


def degradation_from_training(degradation_config: Any) -> Degradation | None:
    """The app's degradation matching a run's ``data.degradation`` config (read as data), or None."""
    if not isinstance(degradation_config, dict):
        return None
    name = str(degradation_config.get("_target_", "")).rsplit(".", 1)[-1]
    number = degradation_config.get
    try:
        if name == "GaussianNoise":
            return Degradation("noise", noise_sigma=float(number("sigma", 25.0)))
        if name == "RandomGaussianNoise":  # blind denoising: try the middle of the trained range
            return Degradation("noise", noise_sigma=(float(number("low", 0.0)) + float(number("high", 50.0))) / 2)
        if name == "GaussianBlur":
            return Degradation(
                "blur",
                blur_sigma=float(number("sigma", 2.0)),
                blur_kernel=int(number("kernel_size", 15)),
                blur_noise=float(number("noise_sigma", 0.0) or 0.0),
            )
        if name == "JpegCompression":
            return Degradation("jpeg", jpeg_quality=float(number("quality", 20.0)))
    except (TypeError, ValueError, AppError):
        return None
    return None


# --------------------------------------------------------------------------------------------------- the model


@dataclass
class ModelCard:
    """What the info panel shows about the loaded network and the run that trained it."""

    source: Path
    info: dict[str, Any]
    parameters: int
    config: dict[str, Any]
    summary: dict[str, Any] | None = None
    summary_path: Path | None = None
    trained_degradation: Degradation | None = None
    trained_degradation_config: dict[str, Any] | None = None

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) rows for the info table."""
        rows = [
            ("model", str(self.source)),
            ("family", str(self.info.get("family"))),
            ("preset", str(self.info.get("preset") or "-")),
            ("attention", str(self.info.get("attention") or "-")),
            ("parameters", f"{self.parameters:,} ({self.parameters / 1e6:.2f} M)"),
            ("channels in / out", f"{self.info.get('in_channels')} / {self.info.get('out_channels')}"),
        ]
        if self.trained_degradation_config is not None:
            trained = self.trained_degradation.describe() if self.trained_degradation else "(not one the app makes)"
            target = str(self.trained_degradation_config.get("_target_", "?")).rsplit(".", 1)[-1]
            rows.append(("trained for", f"{trained} [{target}]"))
        if self.summary:
            metrics = self.summary.get("metrics") or {}
            for label, key in (("training steps", "steps"), ("training data", "data"), ("precision", "precision")):
                if self.summary.get(key) is not None:
                    rows.append((label, str(self.summary[key])))
            if (value := metrics.get("val/psnr")) is not None:
                rows.append(("validation PSNR", f"{float(value):.2f} dB"))
            for key, value in sorted(metrics.items()):  # test sets scored after training: test/<set>/psnr
                parts = key.split("/")
                if len(parts) == 3 and parts[0] == "test" and parts[2] == "psnr" and value is not None:
                    rows.append((f"test PSNR, {parts[1]}", f"{float(value):.2f} dB"))
            if (value := self.summary.get("input_psnr")) is not None:
                rows.append(("validation input PSNR", f"{float(value):.2f} dB"))
            if (value := self.summary.get("wall_time_s")) is not None:
                rows.append(("training wall time", f"{float(value):.0f} s"))
        return rows


def run_folder(model_path: Path) -> Path | None:
    """The training run folder a checkpoint or model folder came from (``<run>/checkpoints/last.ckpt``)."""
    if model_path.is_dir():
        return model_path
    if model_path.parent.name == "checkpoints":
        return model_path.parent.parent
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _trained_degradation_config(run: Path) -> dict[str, Any] | None:
    """``data.degradation`` from the run's saved Hydra config, read as plain YAML (nothing is instantiated)."""
    try:
        config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    degradation = ((config or {}).get("data") or {}).get("degradation") if isinstance(config, dict) else None
    return degradation if isinstance(degradation, dict) else None


def describe_model(model_path: Path, net: nn.Module, config: dict[str, Any]) -> ModelCard:
    card = ModelCard(
        source=model_path,
        info=network_info(net).as_dict(),
        parameters=sum(p.numel() for p in net.parameters()),
        config=dict(config),
    )
    run = run_folder(model_path)
    if run is None:
        return card
    if (summary := read_summary(run)) is not None:
        card.summary, card.summary_path = summary, summary_path(run)
    elif (run / "config.json").is_file():  # a model folder: laformer-export keeps the run's summary in config.json
        suite = (_read_json(run / "config.json") or {}).get("laformer")
        if isinstance(suite, dict) and isinstance(suite.get("summary"), dict):
            card.summary, card.summary_path = suite["summary"], run / "config.json"
    card.trained_degradation_config = _trained_degradation_config(run)
    card.trained_degradation = degradation_from_training(card.trained_degradation_config)
    return card


# --------------------------------------------------------------------------------------------------- photos in


def check_size(height: int, width: int, max_pixels: int, name: str) -> None:
    if height * width > max_pixels:
        raise AppError(
            f"{name} is {width} x {height} ({megapixels(height * width)}); this app restores photos of at most "
            f"{megapixels(max_pixels)} (its --max-pixels): crop or downscale it"
        )


def read_upload(path: str | Path, max_pixels: int, name: str | None = None) -> np.ndarray:
    """An uploaded file's pixels (as ``read_array``), after checking that it is an image of an allowed size.

    The size is read from the file's header before anything is decoded, so an oversized photo costs nothing.
    """
    path = Path(path)
    name = name or path.name
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise AppError(f"{name} is not a PNG, JPEG, TIFF or BMP file; upload a photo")
    try:
        header = read_header(path, max_pixels=None)
    except ImageTooLargeError:  # a header claiming hundreds of megapixels, refused by PIL's own guard
        limit = megapixels(max_pixels)
        raise AppError(f"{name} is far larger than this app's limit of {limit} (--max-pixels)") from None
    except (ImageReadError, OSError, ValueError):
        raise AppError(f"{name} cannot be read as an image: the file is corrupt, truncated or not a photo") from None
    check_size(header.height, header.width, max_pixels, name)
    try:
        array = read_array(path, max_pixels=None, keep_alpha=True)  # the size was checked just above
    except (ImageReadError, OSError, ValueError) as exc:
        reason = "the file is corrupt, truncated or not a photo"
        if "pixel layout" in str(exc):  # OpenCV refuses some layouts (e.g. 2-channel TIFF)
            reason = f"its pixel layout is not supported ({str(exc).split('(', 1)[-1].rstrip(')')[:120]})"
        raise AppError(f"{name} cannot be read as an image: {reason}") from None
    if array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4):
        raise AppError(f"{name} has {array.shape[2]} channels; upload a grayscale or RGB photo (alpha is kept)")
    return array


def bundled_photo_label(name: str) -> str:
    held_out = " (held out from the demo's training)" if name in DEMO_TEST else ""
    return f"{name}: {BUNDLED_PHOTO_NOTES.get(name, '')}{held_out}"


def bundled_photo(name: str, in_channels: int) -> np.ndarray:
    """A photo bundled with scikit-image (no download), as stored (grey or RGB); RGB turned grey for a grey model."""
    if name not in BUNDLED_PHOTOS:
        raise AppError(f"unknown bundled photo {name!r}; choose one of {', '.join(BUNDLED_PHOTOS)}")
    photo = load_demo_photo(name)
    if photo.ndim == 3 and photo.shape[2] == 4:
        photo = photo[..., :3]
    if in_channels == 1 and photo.ndim == 3:
        photo = tensor_to_array(array_to_tensor(photo, channels=1), bit_depth=8)
    return np.ascontiguousarray(photo)


# --------------------------------------------------------------------------------------------------- restoring


def score_psnr(image: np.ndarray, clean: np.ndarray) -> float:
    """PSNR in dB of file pixels against the clean photo's, under :data:`SCORING`."""
    a, b = (prepare_for_scoring(array_to_tensor(split_alpha(x)[0]).unsqueeze(0), SCORING) for x in (image, clean))
    return float(psnr(a, b)[0])


@dataclass
class Restoration:
    """One restored photo: what went into the network, what came out, and how it went."""

    name: str
    suffix: str
    degraded: np.ndarray
    restored: np.ndarray
    seconds: float
    mode: str
    clean: np.ndarray | None = None
    degradation: Degradation = field(default_factory=Degradation)
    psnr_input: float | None = None
    psnr_restored: float | None = None
    started: float = 0.0  # wall-clock time (time.time()) the pass began and ended: the queue's order shows in them
    finished: float = 0.0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return int(self.restored.shape[1]), int(self.restored.shape[0])

    @property
    def bit_depth(self) -> int:
        return 16 if self.restored.dtype == np.uint16 else 8

    def summary(self) -> dict[str, Any]:
        width, height = self.size
        channels = 1 if self.restored.ndim == 2 else int(self.restored.shape[2])
        return {
            "name": self.name,
            "width": width,
            "height": height,
            "channels": channels,
            "bit_depth": self.bit_depth,
            "degradation": self.degradation.describe(),
            "psnr_input_db": self.psnr_input,
            "psnr_restored_db": self.psnr_restored,
            "seconds": round(self.seconds, 3),
            "mode": self.mode,
            "started": self.started,
            "finished": self.finished,
        }


@dataclass(frozen=True)
class RestorationFiles:
    before: Path  # 8-bit preview of the network's input
    after: Path  # 8-bit preview of the result
    result: Path  # the full result: input's size, channels and bit depth


def preview(array: np.ndarray) -> np.ndarray:
    """8-bit pixels for the browser (16-bit photos are rounded down to 8 bit for display only)."""
    if array.dtype == np.uint8:
        return array
    return tensor_to_array(array_to_tensor(array), bit_depth=8)


def write_files(restoration: Restoration, folder: Path) -> RestorationFiles:
    """The previews and the full-resolution result (TIFF for a TIFF, else PNG: lossless, 8 or 16 bit)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(restoration.name).stem or "photo"
    result_suffix = ".tif" if restoration.suffix in (".tif", ".tiff") else ".png"
    files = RestorationFiles(
        before=folder / f"{stem}_input.png",
        after=folder / f"{stem}_restored_preview.png",
        result=folder / f"{stem}_restored{result_suffix}",
    )
    write_array(files.before, preview(restoration.degraded))
    write_array(files.after, preview(restoration.restored))
    write_array(files.result, restoration.restored)
    return files


class _ForwardCounter:
    """Calls a per-thread callback after each forward pass of the network (tiles report progress through it).

    Several requests may restore at once on a GPU; each thread sees only its own passes.
    """

    def __init__(self, net: nn.Module) -> None:
        self._callbacks: dict[int, Callable[[], None]] = {}
        net.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        callback = self._callbacks.get(threading.get_ident())
        if callback is not None:
            callback()

    @contextlib.contextmanager
    def counting(self, callback: Callable[[], None] | None) -> Iterator[None]:
        if callback is None:
            yield
            return
        thread = threading.get_ident()
        self._callbacks[thread] = callback
        try:
            yield
        finally:
            self._callbacks.pop(thread, None)


class Restorer:
    """A loaded network and the server's options; :meth:`restore` is the one path every request takes."""

    def __init__(
        self, net: nn.Module, card: ModelCard, options: RestoreOptions, model_path: str | Path | None = None
    ) -> None:
        self.options = options
        self.device = pick_device(options.device)
        check_precision(options.precision, self.device)
        self.card = card
        self.info = network_info(net)
        check_tiles(self.info, options.tile, options.tile_overlap)
        check_backend(options.backend, self.device, options.precision, options.compile)
        self.net = inference_network(
            prepare_network(net, self.device),
            self.device,
            options.backend,
            options.compile,
            options.compile_shapes,
            checkpoint=model_path,
        )
        self._counter = _ForwardCounter(self.net)  # on the outer module: its forward runs in Python for every engine
        self._seconds_per_pixel: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, model_path: str | Path, options: RestoreOptions | None = None) -> Restorer:
        """Load a checkpoint or model folder with :func:`load_network` (weights only, registered families)."""
        model_path = Path(model_path)
        net, config = load_network(model_path)
        return cls(net, describe_model(model_path, net, config), options or RestoreOptions(), model_path=model_path)

    def mode(self) -> str:
        o = self.options
        tiles = "one pass" if o.tile is None else f"tiles of {o.tile} px (overlap {o.tile_overlap} px)"
        return f"{tiles}, {o.precision}, {self.device.type}"

    def restore_options(self) -> dict[str, Any]:
        """The keyword options of ``restore_array``, as laformer-restore passes them."""
        o = self.options
        return {
            "tile": o.tile,
            "overlap": o.tile_overlap,
            "precision": o.precision,
            "self_ensemble": False,
            "tile_batch": o.tile_batch,
        }

    def _passes(self, height: int, width: int) -> int | None:
        o = self.options
        if o.tile is None:
            return None
        count = tile_count(height, width, o.tile, o.tile_overlap, self.info.size_multiple)
        return math.ceil(count / o.tile_batch)

    def restore(
        self,
        array: np.ndarray,
        name: str,
        suffix: str = ".png",
        clean: np.ndarray | None = None,
        degradation: Degradation | None = None,
        progress: Progress | None = None,
    ) -> Restoration:
        """Restore file pixels ``array`` (uint8/uint16, H x W [x C]); scored against ``clean`` when given."""
        height, width = array.shape[:2]
        check_size(height, width, self.options.max_pixels, name)
        passes = self._passes(height, width)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress is not None and passes:
                progress(min(done / passes, 1.0), f"restoring {name}: tile {min(done, passes)} of {passes}")

        if progress is not None:
            if passes:
                progress(0.0, f"restoring {name} ({width} x {height}) in {passes} tiles")
            else:
                estimate = ""
                if self._seconds_per_pixel is not None:
                    estimate = f", about {max(1, round(self._seconds_per_pixel * height * width))} s"
                progress(None, f"restoring {name} ({width} x {height}) in one pass{estimate}")
        started, start = time.time(), time.perf_counter()
        try:
            with self._counter.counting(tick if passes else None):
                restored = restore_array(self.net, array, source=name, **self.restore_options())
        except ChannelMismatchError as exc:
            raise AppError(str(exc)) from None
        except Exception as exc:
            if is_out_of_memory(exc):
                hint = "" if self.options.tile else "; start the app with --tile 512 to restore large photos in tiles"
                raise AppError(f"out of memory restoring {name} ({width} x {height}){hint}") from None
            raise
        seconds = time.perf_counter() - start
        if passes is None:
            with self._lock:
                self._seconds_per_pixel = seconds / (height * width)
        result = Restoration(
            name=name,
            suffix=suffix,
            degraded=array,
            restored=restored,
            seconds=seconds,
            mode=self.mode(),
            clean=clean,
            degradation=degradation or Degradation(),
            started=started,
            finished=time.time(),
        )
        if clean is not None and clean.shape == array.shape:
            result.psnr_input = score_psnr(array, clean)
            result.psnr_restored = score_psnr(restored, clean)
        return result


@dataclass(frozen=True)
class Request:
    """What a person asked for: an uploaded file or a bundled photo, and an optional degradation."""

    upload: Path | None = None
    upload_name: str | None = None
    photo: str | None = None
    degradation: Degradation = field(default_factory=Degradation)


def handle_request(
    restorer: Restorer, request: Request, folder: Path, progress: Progress | None = None
) -> tuple[Restoration, RestorationFiles]:
    """Everything behind the page's Restore button: read (or pick), degrade, restore, score, write files."""
    if request.upload is not None:
        name = request.upload_name or request.upload.name
        photo = read_upload(request.upload, restorer.options.max_pixels, name=name)
        suffix = Path(name).suffix.lower() or request.upload.suffix.lower()
    elif request.photo:
        name, suffix = f"{request.photo}.png", ".png"
        photo = bundled_photo(request.photo, restorer.info.in_channels)
        check_size(photo.shape[0], photo.shape[1], restorer.options.max_pixels, name)
    else:
        raise AppError("upload a photo or pick a bundled one first")
    degradation = request.degradation
    clean = None
    if degradation.kind != "none":
        clean, photo = photo, degradation.apply(photo)
    restoration = restorer.restore(
        photo, name=name, suffix=suffix, clean=clean, degradation=degradation, progress=progress
    )
    return restoration, write_files(restoration, folder)


class RequestFolders:
    """A fresh folder per request under one root, so no two requests ever share a file; old ones are removed."""

    def __init__(self, root: Path | None = None, max_age_s: float = 3600.0) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="laformer-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = max_age_s

    def new(self) -> Path:
        self.prune()
        return Path(tempfile.mkdtemp(prefix="request-", dir=self.root))

    def prune(self) -> None:
        cutoff = time.time() - self.max_age_s
        for folder in self.root.glob("request-*"):
            with contextlib.suppress(OSError):
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
