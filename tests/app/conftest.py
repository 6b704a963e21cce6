"""Fixtures for the web demo: the 2-step demo checkpoint, a grey model's checkpoint, photos, a running app."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.data.io import write_array
from laformer.models import LAformer
from laformer.training.callbacks import StoreNetConfig
from tests.inference.conftest import trained_ckpt  # noqa: F401 (the real 2-step laformer-train checkpoint)

# The test server's photo limit: small, so that an oversized upload is cheap to make.
TEST_MAX_PIXELS = 200_000
SERVER_START_TIMEOUT_S = 180


def photo(height: int, width: int, channels: int = 3, dtype=np.uint8, colour=(200, 60, 30), seed: int = 0):
    """A smooth colour field with a little texture: a photo-like image whose mean colour is known."""
    rng = np.random.default_rng(seed)
    peak = 65535 if dtype == np.uint16 else 255
    yy, xx = np.mgrid[0:height, 0:width]
    ramp = 0.15 * (np.sin(yy / 7.0) + np.cos(xx / 9.0))
    base = np.asarray(colour, dtype=np.float64)[:channels] / 255.0
    image = base[None, None, :] + ramp[..., None] + rng.normal(0, 0.02, (height, width, channels))
    image = np.clip(image, 0, 1) * peak
    image = image.round().astype(dtype)
    return image[..., 0] if channels == 1 else image


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Photo files of every kind the page takes: PNG, JPEG, TIFF; 8 and 16 bit; grey and colour."""
    folder = tmp_path_factory.mktemp("photos")
    files = {
        "rgb8.png": photo(72, 96),
        "rgb16.tif": photo(64, 80, dtype=np.uint16, colour=(40, 180, 90)),
        "grey8.png": photo(56, 88, channels=1, colour=(120,)),
        "grey16.png": photo(48, 64, channels=1, dtype=np.uint16, colour=(90,)),
        "rgb8.jpg": photo(80, 64, colour=(30, 90, 210)),
    }
    paths = {}
    for name, array in files.items():
        write_array(folder / name, array)
        paths[name] = folder / name
    return paths


@pytest.fixture(scope="session")
def grey_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grayscale LAformer saved as laformer-train saves it (weights under ``net.`` and the network config)."""
    torch.manual_seed(0)
    config = {"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "in_channels": 1, "width": 8}
    net = LAformer.from_preset("tiny", in_channels=1, width=8)
    path = tmp_path_factory.mktemp("grey_model") / "grey.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, StoreNetConfig.KEY: config}, path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_command() -> list[str]:
    script = shutil.which("laformer-app", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "laformer.cli.app"]


@dataclass
class RunningApp:
    url: str
    port: int
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_app(args: list[str], log: Path, port: int) -> RunningApp:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    handle = log.open("w")
    process = subprocess.Popen(
        [*app_command(), *args, "--port", str(port)], stdout=handle, stderr=subprocess.STDOUT, env=env
    )
    app = RunningApp(url=f"http://127.0.0.1:{port}/", port=port, process=process, log=log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"laformer-app exited with {process.returncode}:\n{app.output()[-4000:]}")
        try:
            with urllib.request.urlopen(app.url, timeout=5) as response:
                if response.status == 200:
                    return app
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise AssertionError(f"laformer-app did not answer within {SERVER_START_TIMEOUT_S} s:\n{app.output()[-4000:]}")


def stop_app(app: RunningApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait(timeout=20)


@pytest.fixture(scope="session")
def app_server(trained_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:  # noqa: F811
    """``laformer-app`` on the 2-step checkpoint, in its own process, on a free port of 127.0.0.1."""
    pytest.importorskip("gradio")
    log = tmp_path_factory.mktemp("app_server") / "app.log"
    app = start_app(["--ckpt", str(trained_ckpt), "--max-pixels", str(TEST_MAX_PIXELS)], log, free_port())
    yield app
    stop_app(app)
