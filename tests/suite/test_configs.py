"""Every experiment config composes, and its pieces instantiate into real objects."""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import pytest
from hydra.core.hydra_config import HydraConfig

from laformer.cli.common import instantiate_all
from laformer.runs import config_dir
from laformer.training import RestorationModule

EXPERIMENTS = sorted(p.stem for p in Path(config_dir(), "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(make_cfg, experiment):
    # GPU and DDP trainers cannot be built on a CPU-only machine; the experiment's trainer keys still apply.
    cfg = make_cfg("train", [f"experiment={experiment}", "model.width=8", "trainer=cpu"])
    module = hydra.utils.instantiate(cfg.module)
    assert isinstance(module, RestorationModule)
    assert isinstance(hydra.utils.instantiate(cfg.data), L.LightningDataModule)
    assert module.protocol == hydra.utils.instantiate(cfg.data.protocol)
    callbacks = instantiate_all(cfg.callbacks)
    loggers = instantiate_all(cfg.logger)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    assert trainer.max_steps == cfg.trainer.max_steps


@pytest.mark.parametrize("attention", ["rela", "linear", "softmax"])
def test_attention_is_one_override(make_cfg, attention):
    cfg = make_cfg("train", [f"model.attention={attention}", "model=tiny"])
    module = hydra.utils.instantiate(cfg.module)
    assert module.net.attention == attention
    assert module.net.in_channels == 3


@pytest.mark.parametrize(
    ("group", "choice", "key", "expected"),
    [
        ("precision", "bf16-mixed", "precision", "bf16-mixed"),
        ("precision", "16-mixed", "precision", "16-mixed"),
        ("trainer", "ddp", "strategy", "ddp"),
        ("trainer", "ddp_multinode", "num_nodes", 2),
        ("trainer", "gpu", "accelerator", "gpu"),
    ],
)
def test_trainer_and_precision_presets(make_cfg, group, choice, key, expected):
    cfg = make_cfg("train", [f"{group}={choice}"])
    assert cfg.trainer[key] == expected


def test_several_loggers_at_once(make_cfg):
    cfg = make_cfg("train", ["logger=[wandb,csv,tensorboard]"])
    names = sorted(type(lg).__name__ for lg in instantiate_all(cfg.logger))
    assert names == ["CSVLogger", "TensorBoardLogger", "WandbLogger"]
    assert cfg.logger.wandb.offline is True


def test_slurm_launcher_config_composes(make_cfg):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    make_cfg("train", ["hydra/launcher=slurm", "trainer=ddp_multinode"])
    launcher = HydraConfig.get().launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.nodes == 2 and launcher.tasks_per_node == 8


def test_eval_config_requires_a_checkpoint(make_cfg):
    cfg = make_cfg("eval", [])
    with pytest.raises(Exception, match="ckpt_path"):
        _ = cfg.ckpt_path
