"""Variants at a cost point: every variant of a design choice must cost what the point costs, within a tolerance.

A design choice compared at a cost point (a wider query/key, a larger FFN, another block spread) changes the
network's MACs as well as its design; a variant that is 13 % more expensive wins partly by being larger. So each
variant is sized back to its point (width or depth) and checked here before anything trains: MACs at 256 x 256
counted on the meta device (``laformer.benchmarks.networks.cost``, what the frontier counts), compared with the
point's reference, refused with its ratio when off by more than the tolerance (10 % by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_TOLERANCE = 0.10


class OffCostPoint(ValueError):
    """One or more variants whose MACs are further from their cost point than the tolerance allows."""


def cost_ratio(macs: float, point_macs: float) -> float:
    """A variant's MACs over its point's (1.0: on the point)."""
    if point_macs <= 0:
        raise ValueError(f"a cost point needs positive MACs, got {point_macs}")
    return macs / point_macs


def off_point_message(name: str, macs_g: float, point_macs_g: float, tolerance: float) -> str | None:
    """``"qk_ratio=1.0: 4.38 G MACs, x1.113 of the point's 3.94 G"`` when off by more than ``tolerance``, else None."""
    ratio = cost_ratio(macs_g, point_macs_g)
    if abs(ratio - 1.0) <= tolerance:
        return None
    return f"{name}: {macs_g:.2f} G MACs, x{ratio:.3f} of the point's {point_macs_g:.2f} G"


def check_cost_point(name: str, macs_g: float, point_macs_g: float, tolerance: float = DEFAULT_TOLERANCE) -> float:
    """The variant's ratio to its point; :class:`OffCostPoint` naming that ratio when it is off by more than
    ``tolerance``."""
    message = off_point_message(name, macs_g, point_macs_g, tolerance)
    if message is not None:
        raise OffCostPoint(f"{message}, outside ±{tolerance:.0%}: resize it (width or depth) to stay on the point")
    return cost_ratio(macs_g, point_macs_g)


def check_variants(
    variants: Mapping[str, Sequence[str]],
    reference: Sequence[str],
    tolerance: float = DEFAULT_TOLERANCE,
    base: Sequence[str] = (),
    size: int = 256,
) -> dict[str, dict[str, Any]]:
    """Count every variant's cost and refuse, all at once, those off the reference's point.

    ``variants`` maps a name to the ``laformer-train`` overrides added to ``reference`` (the point's network, e.g.
    ``[model=tiny, model.attention=rela]``); ``base`` goes first (the recipe, e.g. ``experiment=demo``). Returns
    ``{name: {"params_m", "macs_g", "ratio"}}`` with the reference under ``"reference"``; raises
    :class:`OffCostPoint` listing each variant off its point with its ratio.
    """
    from laformer.benchmarks.networks import cost

    point_params, point_macs = cost([*base, *reference], size, size)
    table: dict[str, dict[str, Any]] = {"reference": {"params_m": point_params, "macs_g": point_macs, "ratio": 1.0}}
    wrong = []
    for name, overrides in variants.items():
        params_m, macs_g = cost([*base, *reference, *overrides], size, size)
        table[name] = {"params_m": params_m, "macs_g": macs_g, "ratio": cost_ratio(macs_g, point_macs)}
        message = off_point_message(name, macs_g, point_macs, tolerance)
        if message is not None:
            wrong.append(message)
    if wrong:
        raise OffCostPoint(
            f"variants outside ±{tolerance:.0%} of their cost point ({' '.join(reference)}): " + "; ".join(wrong)
            + ". Resize them (width or depth) to stay on the point."
        )  # fmt: skip
    return table


def merge_overrides(*groups: Sequence[str]) -> list[str]:
    """Override lists joined with later keys winning (``model.width=14`` after ``model.width=16``), in first order.

    A tuned preset is the reference's overrides plus each chosen variant's: where two choices resize the same key,
    the later one stands, and the result is checked against the point again.
    """
    merged: dict[str, str] = {}
    for group in groups:
        for item in group:
            key = str(item).split("=", 1)[0]
            merged[key] = str(item)
    return list(merged.values())


def preset_entry(overrides: Sequence[str], preset: Mapping[str, Any]) -> dict[str, Any]:
    """A ``laformer.models.laformer.PRESETS``-style entry: ``preset`` with the ``model.<key>=`` overrides applied.

    How a chosen combination becomes a named preset (``tiny-tuned`` beside ``tiny``): the study prints this entry
    and the person adopting it pastes it into ``PRESETS``. ``model=`` and ``model.attention=`` are not preset keys.
    """
    import yaml

    entry = dict(preset)
    for item in overrides:
        key, _, value = str(item).partition("=")
        if not key.startswith("model.") or key in ("model.attention", "model.name"):
            continue
        parsed = yaml.safe_load(value)
        entry[key.removeprefix("model.")] = tuple(parsed) if isinstance(parsed, list) else parsed
    return entry
