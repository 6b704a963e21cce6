"""Model folders in the Hugging Face Hub layout: ``model.safetensors``, ``config.json`` and a model card.

This is the format to share a trained network: safetensors holds tensors only, and ``config.json`` is read as
data (its network config goes through the registry of model families, like a checkpoint's). The folder is
what ``huggingface_hub`` uploads as a model repository, and ``LAformer.from_pretrained(folder)`` reads it.

``config.json`` holds the network's constructor arguments at the top level (what ``PyTorchModelHubMixin``
expects) and, under ``"laformer"``, the registry config that rebuilds any family, its ``NetworkInfo`` and the
training summary the card is written from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData, save_torch_model
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from laformer.models.registry import NetworkConfigError, build_network, network_info

CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
SUITE_KEY = "laformer"

CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ description }}

| | |
|---|---|
{% for key, value in facts %}| {{ key }} | {{ value }} |
{% endfor %}

## Use

```bash
pip install laformer   # or: pip install -e . in a checkout of the suite
laformer-restore photo.png -o restored/ --model {{ folder_name }}
```

```python
from laformer.inference.checkpoint import load_network
net, config = load_network("{{ folder_name }}")  # any family; or LAformer.from_pretrained for LAformer folders
```

Written by `laformer-export --format safetensors`. Weights are safetensors; `config.json` holds only plain values.
"""


class ModelFolderError(ValueError):
    """A model folder that cannot be read; the message names the file and the fix."""


def run_summary_for(checkpoint: str | Path) -> dict[str, Any] | None:
    """The ``summary.json`` of the run a checkpoint belongs to (``<run>/checkpoints/x.ckpt``), if present."""
    path = Path(checkpoint).resolve().parent.parent / "summary.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _card_facts(info: dict[str, Any], summary: dict[str, Any] | None, parameters: int) -> list[tuple[str, str]]:
    facts = [("family", info["family"]), ("preset", info.get("preset") or "-")]
    if info.get("attention"):
        facts.append(("attention", info["attention"]))
    facts.append(("parameters", f"{parameters / 1e6:.2f} M"))
    facts.append(("channels in / out", f"{info['in_channels']} / {info['out_channels']}"))
    if summary:
        metrics = summary.get("metrics") or {}
        for label, key in (("validation PSNR (dB)", "val/psnr"), ("validation SSIM", "val/ssim")):
            if key in metrics:
                facts.append((label, f"{metrics[key]:.3f}"))
        if summary.get("input_psnr") is not None:
            facts.append(("degraded input PSNR (dB)", f"{summary['input_psnr']:.3f}"))
        for key in ("data", "experiment", "steps", "precision"):
            if summary.get(key) is not None:
                facts.append((key, str(summary[key])))
    return facts


def save_model_folder(
    net: nn.Module,
    net_config: dict[str, Any],
    folder: str | Path,
    summary: dict[str, Any] | None = None,
    license: str = "mit",
) -> Path:
    """Write ``net`` as a Hub model folder; returns the folder. ``summary``: the run's summary.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = network_info(net).as_dict()
    constructor = dict(getattr(net, "_hub_mixin_config", None) or {})  # LAformer's arguments, for from_pretrained
    config = {
        **constructor,
        SUITE_KEY: {"net_config": net_config, "info": info, "summary": summary},
    }
    save_torch_model(net, folder)  # model.safetensors, handling shared tensors
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
    tags = ["image-restoration", "laformer", info["family"]]
    card = ModelCard.from_template(
        ModelCardData(library_name="laformer", license=license, tags=tags, pipeline_tag="image-to-image"),
        template_str=CARD_TEMPLATE,
        title=f"{info['family']} {info.get('preset') or ''}".strip(),
        description="An image-restoration network trained with the LAformer experiment suite.",
        facts=_card_facts(info, summary, sum(p.numel() for p in net.parameters())),
        folder_name=folder.name,
    )
    card.save(folder / CARD_FILE)
    return folder


def is_model_folder(path: str | Path) -> bool:
    return Path(path, CONFIG_FILE).is_file() or Path(path, WEIGHTS_FILE).is_file()


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelFolderError(f"{folder} has no {CONFIG_FILE}; a model folder holds {CONFIG_FILE} + {WEIGHTS_FILE}")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{path} is not valid JSON ({exc}); copy the folder again") from None
    if not isinstance(config, dict):
        raise ModelFolderError(f"{path} holds a {type(config).__name__}, not a JSON object")
    return config


def folder_net_config(config: dict[str, Any]) -> dict[str, Any]:
    """The registry config: the suite's own entry, else a bare ``LAformer.save_pretrained`` config."""
    suite = config.get(SUITE_KEY)
    if isinstance(suite, dict) and isinstance(suite.get("net_config"), dict):
        return dict(suite["net_config"])
    import inspect

    from laformer.models.laformer import LAformer

    arguments = set(inspect.signature(LAformer.__init__).parameters) - {"self"}
    return {"_target_": "laformer.models.LAformer", **{k: v for k, v in config.items() if k in arguments}}


def load_model_folder(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode on the CPU, its registry config)`` from a model folder."""
    folder = Path(folder)
    config = _read_config(folder)
    net_config = folder_net_config(config)
    source = str(folder / CONFIG_FILE)
    try:
        net = build_network(net_config, source=source)
    except NetworkConfigError as exc:
        raise ModelFolderError(str(exc)) from None
    except TypeError as exc:
        target = net_config.get("_target_")
        raise ModelFolderError(f"{source}: the network config does not fit {target}: {exc}") from None
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFolderError(f"{folder} has no {WEIGHTS_FILE}; copy the whole folder")
    try:
        state = load_file(weights, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFolderError(f"{weights} is truncated or corrupt ({exc}); copy it again") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFolderError(f"{weights}: weights do not fit {source} ({first})") from None
    preset = ((config.get(SUITE_KEY) or {}).get("info") or {}).get("preset")
    if preset and hasattr(net, "preset"):
        net.preset = preset
    return net.eval(), net_config
