"""Mistakes a user makes with the commands that read files: one line naming the file and the fix, the documented
exit status, nothing lost; ``--debug`` / ``LAFORMER_DEBUG=1`` for the traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from laformer.cli import app as app_cli
from laformer.cli import export as export_cli
from laformer.cli import restore as restore_cli
from laformer.data.io import write_array
from laformer.inference.checkpoint import ModelLoadError
from tests.reliability.common import REPO, cli_env


def _error_lines(text: str, prog: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text
    return [line for line in lines if line.startswith(f"{prog}: error: ")]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.ckpt"
    path.write_text("these are my training notes, not a checkpoint\n")
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "photo.png"
    write_array(path, (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8))
    return path


def test_a_text_file_as_a_checkpoint_is_one_line_in_restore_export_and_app(
    text_file: Path, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs = {
        "laformer-restore": lambda: restore_cli.main(
            [str(photo), "-o", str(tmp_path / "out"), "--ckpt", str(text_file)]
        ),
        "laformer-export": lambda: export_cli.main(["--ckpt", str(text_file)]),
        "laformer-app": lambda: app_cli.main(["--ckpt", str(text_file), "--port", "0"]),
    }
    for prog, run in runs.items():
        assert run() == 2, prog
        errors = _error_lines(capsys.readouterr().err, prog)
        assert len(errors) == 1 and str(text_file) in errors[0] and "not a PyTorch checkpoint" in errors[0], prog
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_debug_shows_the_traceback(text_file: Path, photo: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a PyTorch checkpoint"):
        restore_cli.main([str(photo), "-o", str(tmp_path / "out"), "--ckpt", str(text_file), "--debug"])


def test_an_output_that_is_a_file_is_refused(trained_ckpt: Path, photo: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "results.png"
    target.write_bytes(b"keep me")
    assert restore_cli.main([str(photo), "-o", str(target), "--ckpt", str(trained_ckpt)]) == 2
    (error,) = _error_lines(capsys.readouterr().err, "laformer-restore")
    assert f"-o {target} is a file; name a folder" in error
    assert target.read_bytes() == b"keep me"


def test_a_bomb_among_photos_fails_by_name_and_the_rest_are_restored(
    trained_ckpt: Path, photo: Path, tmp_path: Path, capsys
) -> None:
    from tests.inference.test_image_door import png_claiming

    png_claiming(photo.parent / "huge.png", 20000, 20000)
    out = tmp_path / "out"
    assert restore_cli.main([str(photo.parent), "-o", str(out), "--ckpt", str(trained_ckpt)]) == 1
    err = capsys.readouterr().err
    assert "huge.png claims 400.0 Mpx, far above the limit" in err and "Traceback" not in err
    assert (out / photo.name).is_file() and not (out / "huge.png").exists()


def test_the_app_refuses_a_tile_its_network_cannot_take_at_start(tmp_path: Path, capsys) -> None:
    """A NAFNet pads to 16: --tile 40 passes LAformer's multiple of 8 but not NAFNet's, so the app must ask the
    loaded network's descriptor, not a LAformer constant."""
    from safetensors.torch import save_file

    from laformer.models.peers import PeerUnavailableError, build_peer, import_spandrel

    try:
        import_spandrel()
    except PeerUnavailableError as exc:  # the core suite works without the `peers` extra
        pytest.skip(str(exc))

    net = build_peer("nafnet", "small").model
    weights = tmp_path / "NAFNet-small.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights)
    assert app_cli.main(["--ckpt", str(weights), "--tile", "40", "--port", "0", "--device", "cpu"]) == 2
    (error,) = _error_lines(capsys.readouterr().err, "laformer-app")
    assert "--tile must be a positive multiple of 16 for this nafnet network, got 40" in error


def _eval(ckpt: Path, root: Path, run_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "laformer.cli.evaluate", f"ckpt_path={ckpt}", "data=gopro", f"data.root={root}"]
    command += ["data.test_sets=[gopro]", "logger=csv", f"hydra.run.dir={run_dir}"]
    return subprocess.run(command, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)


def test_eval_on_an_empty_folder_and_on_mismatched_pairs_says_what_is_wrong(trained_ckpt: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    pairs = tmp_path / "pairs"
    write_array(pairs / "test" / "input" / "0001.png", np.zeros((64, 80, 3), np.uint8))
    write_array(pairs / "test" / "target" / "0001.png", np.zeros((60, 80, 3), np.uint8))
    expected = {empty: "no GoPro test split found in", pairs: "input-target layout at"}
    for root, words in expected.items():
        proc = _eval(trained_ckpt, root, tmp_path / f"run_{root.name}")
        assert proc.returncode == 2, proc.stderr[-3000:]
        (error,) = _error_lines(proc.stderr, "laformer-eval")
        assert words in error and str(root) in error
    assert "is 64x80 but its target" in proc.stderr  # the problem itself, listed under the headline


def test_ctrl_c_during_restore_keeps_finished_outputs_and_no_partial_file(trained_ckpt: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(6):
        write_array(photos / f"p{i}.png", (np.random.default_rng(i).random((384, 384, 3)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "laformer.cli.restore", str(photos), "-o", str(out), "--ckpt", str(trained_ckpt)]
    # Ctrl-C as a terminal delivers it: a shell that starts a job in the background without job control (a CI
    # script's `&`) hands it SIGINT ignored, and Python then never raises KeyboardInterrupt, so the child gets the
    # default disposition back first.
    proc = subprocess.Popen(
        command, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not (out / "p0.png").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "restore ended before its first output"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    (error,) = _error_lines(err, "laformer-restore")
    assert "interrupted; finished outputs are in" in error
    written = sorted(p.name for p in out.iterdir())
    assert "p0.png" in written and len(written) < 6 and not [n for n in written if n.endswith(".tmp")]
