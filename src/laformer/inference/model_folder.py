"""Model folders in the Hugging Face Hub layout: ``model.safetensors``, ``config.json`` and a model card.

This is the format to share a trained network: safetensors holds tensors only, and ``config.json`` is read as
data (its network config goes through the registry of model families, like a checkpoint's). The folder is
what ``huggingface_hub`` uploads as a model repository, and ``LAformer.from_pretrained(folder)`` reads it.
This module writes folders; reading them is :func:`laformer.inference.checkpoint.load_network`'s job.

``config.json`` holds the network's constructor arguments at the top level (what ``PyTorchModelHubMixin``
expects) and, under ``"laformer"``, the registry config that rebuilds any family, its ``NetworkInfo`` and the
training summary the card is written from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData, save_torch_model
from torch import nn

from laformer.inference.checkpoint import CARD_FILE, CONFIG_FILE, SUITE_KEY
from laformer.models.registry import network_info

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


def run_summary_for(checkpoint: str | Path) -> dict[str, Any] | None:
    """The ``summary.json`` of the run a checkpoint belongs to (``<run>/checkpoints/x.ckpt``), if present."""
    from laformer.runs import SUMMARY_FILE  # the run folder's layout (imported here: it brings Hydra along)

    path = Path(checkpoint).resolve().parent.parent / SUMMARY_FILE
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
