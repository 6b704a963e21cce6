"""Bad values of the keys users change most are refused in one line before any logger, worker or network starts
(``laformer.config_checks``), and a full disk mid-training is one line with the resume command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from laformer.cli.train import train
from laformer.config_checks import RULES, ConfigError, check_run_config
from tests.conftest import FAST_DEMO
from tests.reliability.common import REPO, cli_command, cli_env, fast


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("data.batch_size=0", "data.batch_size=0 must be a positive integer"),
        ("module.optimizer.lr=-1", "module.optimizer.lr=-1 must be a positive number"),
        ("trainer.max_steps=abc", "trainer.max_steps='abc' must be an integer"),
        ("data.patch_size=7", "data.patch_size=7 is not a multiple of 8, the size this laformer network pads"),
    ],
)
def test_a_bad_value_is_refused_before_any_logger_starts(make_cfg, tmp_path: Path, override: str, words: str) -> None:
    run_dir = tmp_path / "run"
    cfg = make_cfg("train", [*FAST_DEMO, "logger=[csv,wandb]", override], run_dir=run_dir)
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        train(cfg)
    written = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert written <= {"run.lock"}, f"{override}: the run wrote {written} before refusing"


def test_every_bad_key_is_named_at_once() -> None:
    config = {"data": {"batch_size": 0, "num_workers": -1}, "trainer": {"max_steps": 1.5}}
    with pytest.raises(ConfigError) as info:
        check_run_config(config)
    message = str(info.value)
    assert all(key in message for key in ("data.batch_size", "data.num_workers", "trainer.max_steps"))
    assert "\n" not in message


def test_good_values_and_absent_keys_pass() -> None:
    check_run_config({"data": {"batch_size": 8, "patch_size": None}, "module": {"optimizer": {"lr": 1}}, "seed": None})
    check_run_config({})
    assert len({rule.key for rule in RULES}) == len(RULES)


def test_laformer_train_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        cli_command(tmp_path / "run", fast("data.batch_size=0")),
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines() == [
        "laformer-train: error: data.batch_size=0 must be a positive integer (the global batch) "
        "(fix the override or the config file)"
    ]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1.5 MB tmpfs: room for the run folder's config and logs, not for a checkpoint."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip()[:120]})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_training_is_one_line_with_the_resume_command(small_disk: Path) -> None:
    run_dir = small_disk / "run"
    overrides = fast("trainer.max_steps=4", "trainer.val_check_interval=2", "callbacks.image_grid=null")
    proc = subprocess.run(
        cli_command(run_dir, overrides), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("laformer-train: error:")]
    assert "the disk is full" in error and f"ckpt_path=last hydra.run.dir={run_dir}" in error
    assert not list(run_dir.rglob("*.ckpt"))  # no half-written checkpoint passes for a good one
