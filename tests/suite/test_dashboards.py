"""wandb dashboards: offline runs read back with wandb's own record reader (DataStore + protobuf Records).

Checks the flat config keys every run carries, the best-value summary definitions, the tags, the validation
image, and a sweep's collected table logged as a wandb Table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from omegaconf import open_dict

from laformer.cli.train import train
from tests.conftest import FAST_DEMO

datastore = pytest.importorskip("wandb.sdk.internal.datastore", reason="wandb>=0.30 dropped its record reader")
from wandb.proto import wandb_internal_pb2  # noqa: E402


def read_records(run_dir: Path) -> dict[str, list]:
    """Every record of an offline run's ``.wandb`` file, grouped by record type."""
    (path,) = run_dir.glob("*.wandb")
    store = datastore.DataStore()
    store.open_for_scan(str(path))
    records: dict[str, list] = defaultdict(list)
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        records[record.WhichOneof("record_type")].append(record)
    return records


def items_to_dict(items) -> dict:
    """Record items (``key`` or a ``nested_key`` path, and a JSON value) as a nested dict."""
    out: dict = {}
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(item.value_json)
    return out


def config_of(records: dict[str, list]) -> dict:
    config: dict = {}
    for record in records["config"]:
        config.update(items_to_dict(record.config.update))
    return config


def history_of(records: dict[str, list]) -> dict:
    history: dict = {}
    for record in records["history"]:
        history.update(items_to_dict(record.history.item))
    return history


def test_run_config_summaries_tags_and_images(make_cfg) -> None:
    cfg = make_cfg(
        "train", [*FAST_DEMO, "logger=[wandb]", "trainer.max_steps=2", "trainer.val_check_interval=2", "seed=7"]
    )
    with open_dict(cfg):
        cfg.logger.wandb.offline = True
    summary = train(cfg)
    (run,) = (Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*")
    records = read_records(run)

    config = config_of(records)
    expected = {
        "family": "laformer",
        "preset": "tiny",
        "attention": "rela",
        "task": "demo",
        "dataset": "demo",
        "degradation": "GaussianNoise",
        "sigma": 25.0,
        "precision": "32-true",
        "seed": 7,
        "patch_size": 32,
    }
    assert {k: config.get(k) for k in expected} == expected
    assert config["model"]["width"] == 8  # the whole nested config is there too
    assert summary["family"] == "laformer" and summary["seed"] == 7  # the same keys reach the sweep table

    metrics = {r.metric.name: r.metric for r in records["metric"] if r.metric.name}
    assert metrics["val/psnr"].summary.max and not metrics["val/psnr"].summary.last
    assert metrics["train/loss"].summary.min
    (run_record,) = [r.run for r in records["run"]][:1]
    assert {"demo", "laformer"} <= set(run_record.tags)

    images = history_of(records)["val/images"]
    assert images["_type"] == "images/separated" and images["count"] == 1


@pytest.mark.slow  # a two-job multirun with wandb offline, 26 s; test_multirun covers the sweep table itself
def test_sweep_table_goes_to_wandb(tmp_path: Path) -> None:
    env = {**os.environ, "LAFORMER_OUTPUTS": str(tmp_path / "out"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [
        sys.executable,
        "-m",
        "laformer.cli.train",
        "-m",
        *[o for o in FAST_DEMO if not o.startswith("logger=")],
        "logger=[wandb]",
        "seed=1,2",
        "trainer.max_steps=1",
        "trainer.val_check_interval=1",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "out" / "demo" / "multiruns").iterdir()
    jobs = [config_of(read_records(run)) for run in sorted(sweep.glob("*/wandb/offline-run-*"))]
    assert sorted(j["seed"] for j in jobs) == [1, 2] and {j["sweep_id"] for j in jobs} == {sweep.name}

    (summary_run,) = sweep.glob("wandb/offline-run-*")
    records = read_records(summary_run)
    assert records["run"][0].run.run_group == sweep.name
    table = history_of(records)["sweep/summary"]
    assert table["_type"] == "table-file" and table["nrows"] == 2
    (table_file,) = (summary_run / "files").rglob("*.table.json")
    content = json.loads(table_file.read_text())
    seeds = [row[content["columns"].index("seed")] for row in content["data"]]
    assert sorted(seeds) == [1, 2]
