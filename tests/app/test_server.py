"""laformer-app in its own process, driven through gradio_client: uploads, bundled photos, bad uploads, the
queue with four clients at once, and the command line."""

from __future__ import annotations

import itertools
import re
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

pytest.importorskip("gradio")
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError as ClientAppError
from gradio_client.utils import Status

from laformer.app.service import RestoreOptions, Restorer
from laformer.data.io import read_array, write_array
from tests.app.conftest import TEST_MAX_PIXELS, free_port, photo

API = "/restore"


def restore(client: Client, upload: Path | None = None, bundled: str | None = None, kind: str = "none", **values):
    """One press of the Restore button: (slider pair, status text, result file, details)."""
    return client.predict(
        handle_file(str(upload)) if upload else None,
        bundled,
        kind,
        values.get("noise_sigma", 25),
        values.get("blur_sigma", 2.0),
        values.get("jpeg_quality", 20),
        values.get("seed", 0),
        api_name=API,
    )


@pytest.fixture(scope="module")
def client(app_server) -> Client:
    return Client(app_server.url, verbose=False)


def test_upload_restore_download(client, photos):
    (before, after), status, result, details = restore(client, photos["rgb16.tif"])
    restored = read_array(result)
    assert restored.shape == (64, 80, 3) and restored.dtype == np.uint16  # full size, 16 bit as uploaded
    assert Path(result).name == "rgb16_restored.tif"
    assert read_array(before).shape == read_array(after).shape == (64, 80, 3)  # 8-bit previews for the slider
    assert read_array(after).dtype == np.uint8
    assert details["width"] == 80 and details["height"] == 64 and details["bit_depth"] == 16
    assert details["psnr_restored_db"] is None and "80 x 64, RGB, 16 bit" in status and "restored in" in status


def test_grey_photo_stays_grey(client, photos):
    _, _, result, details = restore(client, photos["grey16.png"])
    restored = read_array(result)
    assert restored.shape == (48, 64) and restored.dtype == np.uint16 and details["channels"] == 1


def test_bundled_photo_with_noise_shows_psnr(client):
    _, status, result, details = restore(client, bundled="chelsea", kind="noise", noise_sigma=25, seed=1)
    assert read_array(result).shape == (300, 451, 3)
    assert 19.5 < details["psnr_input_db"] < 21.5 and details["psnr_restored_db"] is not None
    assert "PSNR against the clean photo: input" in status and "Gaussian noise, sigma 25" in status


def test_bad_uploads_give_a_message_and_the_app_serves_on(app_server, client, photos, tmp_path):
    text = tmp_path / "holiday.png"
    text.write_text("this is not a photo")
    other = tmp_path / "holiday.txt"
    other.write_text("this is not a photo")
    big = tmp_path / "panorama.png"
    write_array(big, photo(500, 500))
    cases = [
        (dict(upload=text), "holiday.png cannot be read as an image"),
        (dict(upload=other), "Invalid file type"),
        (
            dict(upload=big),
            f"panorama.png is 500 x 500 (250,000 pixels); this app restores photos of at most {TEST_MAX_PIXELS:,}",
        ),
        (dict(bundled="astronaut"), "astronaut.png is 512 x 512"),  # bundled photos obey --max-pixels too
        (dict(), "upload a photo or pick a bundled one first"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ClientAppError) as caught:
            restore(client, **kwargs)
        assert message in str(caught.value), f"{kwargs}: {caught.value}"
        # ... and the next request is served
        assert read_array(restore(client, photos["rgb8.png"])[2]).shape == (72, 96, 3)
    assert app_server.process.poll() is None


def test_four_clients_at_once_each_get_their_own_photo(app_server, trained_ckpt, tmp_path):
    """Four people upload different photos at once: the queue runs one at a time on the CPU, each sees its place,
    and each gets the restoration of its own photo back (checked by size, and by colour against each photo's
    restoration by the same checkpoint here: a 2-step network may shift colours, so the uploads are no reference)."""
    colours = [(230, 40, 40), (40, 210, 60), (50, 70, 230), (230, 220, 60)]
    sizes = [(296, 400), (320, 360), (256, 440), (344, 320)]  # about 0.12 Mpx each: long enough to queue
    uploads = []
    for i, (colour, (h, w)) in enumerate(zip(colours, sizes)):
        path = tmp_path / f"person{i}.png"
        write_array(path, photo(h, w, colour=colour, seed=i))
        uploads.append(path)
    clients = [Client(app_server.url, verbose=False) for _ in uploads]
    start = threading.Barrier(len(clients))
    outcomes: dict[int, tuple] = {}
    seen_queue: dict[int, list[tuple[int | None, int | None]]] = {i: [] for i in range(len(clients))}
    progress: set[str] = set()

    def person(i: int) -> None:
        start.wait()
        job = clients[i].submit(handle_file(str(uploads[i])), None, "none", 25, 2.0, 20, 0, api_name=API)
        while not job.done():
            status = job.status()
            if status.code == Status.IN_QUEUE:
                seen_queue[i].append((status.rank, status.queue_size))
            progress.update(unit.desc for unit in status.progress_data or [] if unit.desc)
            time.sleep(0.02)
        outcomes[i] = job.result()

    threads = [threading.Thread(target=person, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(outcomes) == len(clients), f"only {sorted(outcomes)} finished"

    restorer = Restorer.from_path(trained_ckpt, RestoreOptions(device="cpu"))
    means = [restorer.restore(read_array(p), p.name).restored.reshape(-1, 3).mean(0) for p in uploads]
    intervals = []
    for i, (_, _, result, details) in outcomes.items():
        restored = read_array(result)
        assert restored.shape == (*sizes[i], 3), f"person {i} got a {restored.shape} result"
        assert Path(result).name == f"person{i}_restored.png"
        distances = [np.abs(restored.reshape(-1, 3).mean(0) - m).sum() for m in means]
        assert int(np.argmin(distances)) == i, f"person {i}'s result looks like photo {int(np.argmin(distances))}"
        intervals.append((details["started"], details["finished"]))
    # one restoration at a time on the CPU
    intervals.sort()
    assert all(end <= next_start + 1e-3 for (_, end), (next_start, _) in itertools.pairwise(intervals))
    # those who waited were told their place: with one restoring, the others queue behind it (rank 0, 1, ...)
    ranks = [rank for seen in seen_queue.values() for rank, _ in seen if rank is not None]
    assert ranks and max(ranks) >= 1, f"queue places seen: {seen_queue}"
    # the progress line of a one-pass restoration (the later ones also estimate the time from the earlier)
    assert any(
        re.fullmatch(r"restoring person\d\.png \(\d+ x \d+\) in one pass(, about \d+ s)?", p) for p in progress
    ), progress


def test_listens_on_loopback_only(app_server):
    listening = [c.laddr for c in psutil.Process(app_server.process.pid).net_connections("tcp") if c.status == "LISTEN"]
    assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}
    assert app_server.port in {addr.port for addr in listening}
    assert f"Running on local URL:  http://127.0.0.1:{app_server.port}" in app_server.output()
    assert "public URL" not in app_server.output()  # no share link


def test_page_shows_the_model_and_sends_no_analytics(app_server):
    import urllib.request

    with urllib.request.urlopen(f"{app_server.url}config", timeout=10) as response:
        config = response.read().decode()
    assert "tiny laformer (rela)" in config and "trained for Gaussian noise, sigma 25" in config
    assert '"analytics_enabled":false' in config.replace(" ", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ckpt", "{ckpt}", "--concurrency", "2", "--device", "cpu"], "--concurrency 2 needs a GPU"),
        (["--ckpt", "{missing}"], "checkpoint not found"),
        (["--ckpt", "{ckpt}", "--max-pixels", "0"], "--max-pixels must be >= 1"),
        (["--ckpt", "{ckpt}", "--tile", "30"], "--tile must be a positive multiple of 8"),
    ],
)
def test_command_line_errors(args, message, trained_ckpt, tmp_path, capsys):
    from laformer.cli.app import main

    filled = [a.format(ckpt=trained_ckpt, missing=tmp_path / "none.ckpt") for a in args]
    try:
        status = main([*filled, "--port", str(free_port())])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status == 2 and message in capsys.readouterr().err
