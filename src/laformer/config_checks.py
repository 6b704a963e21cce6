"""A schema for the keys of a run config that users change most, checked before anything starts.

Hydra composes whatever a command line says: ``data.batch_size=0`` or ``trainer.max_steps=abc`` reach the
constructors unchanged, and fail minutes later inside a data loader, the optimiser or Lightning, with loggers
already started and a traceback that names none of the keys. :func:`check_run_config` reads the composed config
against :data:`RULES` (type, range, the fix) before any logger, worker or network exists, and raises one
:class:`ConfigError` that lists every bad key. Keys absent from the config are not required.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """Config keys with values the run cannot use; the message names each key, its value and what it takes."""


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """One key: what values it takes (``accepts``) and how to say so (``takes``)."""

    key: str
    accepts: Callable[[Any], bool]
    takes: str
    optional: bool = False  # null allowed

    def problem(self, config: Mapping[str, Any]) -> str | None:
        found, value = _lookup(config, self.key)
        if not found or (value is None and self.optional):
            return None
        if value is not None and self.accepts(value):
            return None
        return f"{self.key}={value!r} must be {self.takes}"


def _lookup(config: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


RULES: tuple[Rule, ...] = (
    Rule("seed", _integer, "an integer", optional=True),
    Rule("data.batch_size", lambda v: _integer(v) and v >= 1, "a positive integer (the global batch)"),
    Rule("data.val_batch_size", lambda v: _integer(v) and v >= 1, "a positive integer", optional=True),
    Rule("data.patch_size", lambda v: _integer(v) and v >= 1, "a positive integer (pixels)", optional=True),
    Rule("data.num_workers", lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    Rule("data.repeat", lambda v: _integer(v) and v >= 1, "a positive integer"),
    Rule("module.optimizer.lr", lambda v: _number(v) and v > 0, "a positive number, e.g. 3e-4"),
    Rule("module.optimizer.weight_decay", lambda v: _number(v) and v >= 0, "a number >= 0"),
    Rule("trainer.max_steps", lambda v: _integer(v) and v >= -1, "an integer (steps; -1 for no limit)"),
    Rule("trainer.max_epochs", lambda v: _integer(v) and v >= -1, "an integer (-1 for no limit)", optional=True),
    Rule(
        "trainer.val_check_interval",
        lambda v: _number(v) and v > 0,
        "a positive number (steps, or a fraction of an epoch)",
        optional=True,
    ),
    Rule("trainer.log_every_n_steps", lambda v: _integer(v) and v >= 1, "a positive integer"),
    Rule("trainer.accumulate_grad_batches", lambda v: _integer(v) and v >= 1, "a positive integer"),
    Rule("trainer.gradient_clip_val", lambda v: _number(v) and v >= 0, "a number >= 0", optional=True),
    Rule("trainer.num_nodes", lambda v: _integer(v) and v >= 1, "a positive integer"),
)


def _plain(cfg: DictConfig | Mapping[str, Any]) -> Mapping[str, Any]:
    """The config's values with interpolations resolved where they can be (an unresolvable one is left out)."""
    if not isinstance(cfg, DictConfig):
        return cfg
    plain: dict[str, Any] = {}
    for rule in RULES:
        head, _, _ = rule.key.partition(".")
        if head in plain or head not in cfg:
            continue
        node = cfg[head]
        try:
            plain[head] = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        except Exception:  # an interpolation that needs Hydra's runtime: checked where it is used
            plain[head] = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node
    return plain


def check_run_config(cfg: DictConfig | Mapping[str, Any], rules: tuple[Rule, ...] = RULES) -> None:
    """Raise :class:`ConfigError` listing every key of ``cfg`` that breaks its rule (all at once, one line)."""
    config = _plain(cfg)
    problems = [problem for rule in rules if (problem := rule.problem(config))]
    if problems:
        raise ConfigError("; ".join(problems) + " (fix the override or the config file)")


def check_patch_sizes(patch_sizes: list[int], multiple: int, family: str) -> None:
    """Training crops must be multiples of the network's size multiple: a network pads any other size, so every
    training patch would be padded with reflected pixels it then learns from."""
    if multiple <= 1:
        return
    for patch in patch_sizes:
        if patch % multiple:
            lower, upper = patch // multiple * multiple, (patch // multiple + 1) * multiple
            near = f"{lower} or {upper}" if lower else str(upper)
            raise ConfigError(
                f"data.patch_size={patch} is not a multiple of {multiple}, the size this {family} network pads its "
                f"input to; use {near}"
            )
