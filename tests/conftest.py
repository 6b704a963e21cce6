"""Shared fixtures: compose the project's real Hydra configs into a temporary run folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from laformer.runs import config_dir, register_resolvers

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")

CONFIG_DIR = config_dir()

# A demo run small enough for a test: a narrow tiny model, small crops, one short validation photo.
FAST_DEMO = [
    "experiment=demo",
    "logger=csv",
    "model.width=8",
    "data.patch_size=32",
    "data.batch_size=2",
    "data.repeat=1",
    "data.train_photos=[astronaut,coffee]",
    "data.val_photos=[chelsea]",
    "data.val_crop=96",
    # The demo's held-out test set, dead-leaves pictures and classical anchors stay out of the quick runs.
    "data.test_photos=[]",
    "data.procedural_ratio=0.0",
    "test_after_fit=false",
    "callbacks.anchors.methods=[]",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar=null",
]


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg("train", [overrides])``: the composed config, as ``hydra.main`` would see it."""
    register_resolvers()

    def _make(config_name: str = "train", overrides: list[str] | None = None, run_dir: Path | None = None):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides or [], return_hydra_config=True)
        run_dir = Path(run_dir or tmp_path / "run")
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.num = 0
            cfg.hydra.job.id = "test"
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]  # hydra.main hands the job its config without the hydra node
        return cfg

    yield _make
    GlobalHydra.instance().clear()
