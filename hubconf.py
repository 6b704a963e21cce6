"""torch.hub entry points: ``torch.hub.load(repo_dir, "laformer_tiny", source="local", weights=PATH)``.

``weights`` is a laformer-train checkpoint, a model folder from ``laformer-export --format safetensors`` (or its
``model.safetensors``), loaded weights-only through the suite's safe loader; without it the network is untrained.
The network's config comes from the weights' own config when they carry one, and must then match the entry's
preset. Nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

dependencies = ["torch", "huggingface_hub", "safetensors"]

_SRC = Path(__file__).resolve().parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:  # a checkout that is not pip-installed
    sys.path.insert(0, str(_SRC))


def _laformer(preset: str, weights: str | Path | None, attention: str, **overrides):
    from laformer.inference.checkpoint import load_network
    from laformer.models import LAformer, network_info

    if weights is None:
        return LAformer.from_preset(preset, attention=attention, **overrides).eval()
    net, _ = load_network(weights)
    info = network_info(net)
    if info.family != "laformer" or (info.preset is not None and info.preset != preset):
        raise ValueError(
            f"{weights} holds a {info.family} {info.preset or ''} network, not laformer {preset}; "
            f"load it with the matching entry point or laformer.inference.checkpoint.load_network"
        )
    return net


def laformer_tiny(weights: str | Path | None = None, attention: str = "rela", **overrides):
    """LAformer ``tiny`` (1.0 M parameters with RELA); ``weights``: checkpoint or model folder."""
    return _laformer("tiny", weights, attention, **overrides)


def laformer_small(weights: str | Path | None = None, attention: str = "rela", **overrides):
    """LAformer ``small`` (5.6 M parameters with RELA); ``weights``: checkpoint or model folder."""
    return _laformer("small", weights, attention, **overrides)


def laformer_base(weights: str | Path | None = None, attention: str = "rela", **overrides):
    """LAformer ``base`` (21.2 M parameters with RELA); ``weights``: checkpoint or model folder."""
    return _laformer("base", weights, attention, **overrides)
