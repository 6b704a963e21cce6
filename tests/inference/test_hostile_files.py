"""Shared model files that lie about their size, tried through the real entry points (issue: hostile input).

A network config is data: it may ask for a network far larger than the tensors stored beside it. Today's door
(``laformer.inference.checkpoint.load_network``) builds the config's large tensors on the meta device, under a
parameter budget taken from the stored weights, and compares every tensor's shape before anything is allocated.
Peak memory is measured in a process of its own (psutil sampling), as a user's command would use it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from laformer.cli import export as export_cli
from laformer.inference.checkpoint import ModelLoadError, load_network
from laformer.models import LAformer
from laformer.models.registry import WeightsMismatchError

# A tiny width-8 network holds ~0.27 M numbers (1 MB); asking for width 256 from the same weights would allocate
# ~1,000x that (over 1 GB) before the old loader noticed. Importing torch and the suite takes ~0.5 GB here.
HOSTILE_WIDTH = 256
PEAK_LIMIT_MB = 1000

# The toolkit's psutil sampler, not ru_maxrss: Linux carries the parent's high-water mark into a child across
# fork + exec, so ru_maxrss read the pytest process's 1.5 GB in a full run.
MEASURE = """
import sys
from laformer.benchmarks.memory import PeakMemory
from laformer.cli.restore import main
with PeakMemory() as memory:
    status = main(sys.argv[1:])
print(f"PEAK_MB {memory.peak_mb:.0f}")
sys.exit(status)
"""


def _restore_in_own_process(model: Path, photo: Path, out: Path) -> tuple[int, str, float]:
    """(exit status, stderr, peak RSS in MB) of ``laformer-restore`` run alone in a fresh interpreter."""
    args = [sys.executable, "-c", MEASURE, str(photo), "-o", str(out), "--ckpt", str(model), "--device", "cpu"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    peak = next(float(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK_MB"))
    return proc.returncode, proc.stderr, peak


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    from laformer.data.io import write_array

    path = tmp_path / "in" / "photo.png"
    write_array(path, (torch.rand(24, 32, 3) * 255).to(torch.uint8).numpy())
    return path


def _hostile_checkpoint(trained_ckpt: Path, folder: Path, **changes) -> Path:
    checkpoint = torch.load(trained_ckpt, map_location="cpu", weights_only=True)
    checkpoint["laformer_net_config"].update(changes)
    path = folder / "shared.ckpt"
    torch.save(checkpoint, path)
    return path


def _hostile_folder(trained_ckpt: Path, folder: Path, **changes) -> Path:
    assert export_cli.main(["--ckpt", str(trained_ckpt), "--format", "safetensors", "-o", str(folder / "model")]) == 0
    config_path = folder / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config.update(changes)  # the constructor arguments LAformer.from_pretrained reads
    config["laformer"]["net_config"].update(changes)  # the registry config load_network reads
    config_path.write_text(json.dumps(config))
    return folder / "model"


@pytest.mark.parametrize("kind", ["checkpoint", "model folder"])
def test_a_config_far_larger_than_its_weights_is_refused_before_allocating(
    kind: str, trained_ckpt: Path, photo: Path, tmp_path: Path
) -> None:
    make = _hostile_checkpoint if kind == "checkpoint" else _hostile_folder
    model = make(trained_ckpt, tmp_path, width=HOSTILE_WIDTH)
    status, err, peak = _restore_in_own_process(model, photo, tmp_path / "out")
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("laformer-restore: error: ") and "more parameters than the stored weights" in lines[-1]
    assert str(model.name) in lines[-1] and "Traceback" not in err
    assert peak < PEAK_LIMIT_MB, f"peak {peak:.0f} MB while refusing a width-{HOSTILE_WIDTH} config"
    assert not (tmp_path / "out" / photo.name).exists()


def test_a_config_that_asks_for_thousands_of_blocks_is_stopped_at_once(trained_ckpt: Path, tmp_path: Path) -> None:
    model = _hostile_checkpoint(trained_ckpt, tmp_path, blocks=[20000, 1, 1, 1])
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"shared\.ckpt: the network config asks for more"):
        load_network(model)
    assert time.perf_counter() - start < 20  # the budget stops the build within its first blocks


def test_a_config_of_other_shapes_names_the_first_tensor_that_differs(trained_ckpt: Path, tmp_path: Path) -> None:
    model = _hostile_checkpoint(trained_ckpt, tmp_path, kernel_size=3)  # RELA's depthwise kernel: 5 in the weights
    with pytest.raises(ModelLoadError, match=r"does not fit the stored weights \(.*dwconv.*\[.*3, 3\].*\[.*5, 5\]"):
        load_network(model)


def test_from_pretrained_checks_the_folder_config_against_its_tensors(trained_ckpt: Path, tmp_path: Path) -> None:
    honest = tmp_path / "honest"
    assert export_cli.main(["--ckpt", str(trained_ckpt), "--format", "safetensors", "-o", str(honest)]) == 0
    assert isinstance(LAformer.from_pretrained(honest), LAformer)
    hostile = _hostile_folder(trained_ckpt, tmp_path / "h", width=HOSTILE_WIDTH)
    shutil.rmtree(honest)
    with pytest.raises(WeightsMismatchError, match="more parameters than the stored weights"):
        LAformer.from_pretrained(hostile)
