"""The stages of the fair frontier (issue 26; README "Issue 26: a fair frontier — the plan"), run by ``frontier.py
--stage NAME``: each network's learning rate chosen on the validation photos, LAformer's open choices at the tiny
point, the long frontier with learning curves, the small point, the demo-budget check of the tuned preset, and the
report.

Every job goes through ``frontier.train`` (so through ``laformer.sweeps.start_job``: a finished job is skipped, a
started one resumes, one of other overrides is refused), into ``stages/<stage>/...``. What a later stage needs from
an earlier one is a committed CSV here (``chosen_lr.csv``, ``choices.csv``), so a fresh checkout continues. Choices
read ``val_psnr`` only (``laformer.reports.select_by_validation``); held-out scores go to the tables and curves.
The frontier module is passed in (``fr``) rather than imported: ``frontier.py`` runs as ``__main__``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from laformer.benchmarks.cost_points import check_cost_point, check_variants, merge_overrides, preset_entry
from laformer.reports import (
    learning_curve_rows,
    markdown_table,
    plot_learning_curves,
    read_csv,
    select_by_validation,
    write_csv,
)
from laformer.runs import read_summary
from laformer.training.curve_checkpoints import read_curve_records

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VARIANTS_FILE = HERE / "variants.yaml"
CHOSEN_LR = HERE / "chosen_lr.csv"
CHOICES = HERE / "choices.csv"
RECIPE_FILE = "recipe.yaml"  # in stages/: the composed recipe every stage's jobs share
GRID = (3e-4, 1e-3, 2e-3, 3e-3, 6e-3)
TUNED = "laformer_tuned"
DEMO_LR = 3e-3  # the demo's own recipe (conf/experiment/demo.yaml), for the demo-budget check
# A grid whose validation scores all lie within SEPARATES_DB of each other chose nothing: its best is noise (DnCNN on
# its plateau, 20.5-20.9 dB at every rate, 2026-12-07). Such a network trains at FALLBACK_LR, the old frontier's one
# rate, at which dncnn_probe.py saw DnCNN leave the plateau on a validation photo (README "Why DnCNN did not learn").
SEPARATES_DB = 0.5
FALLBACK_LR = 1e-3


@dataclass(frozen=True)
class Stage:
    """One stage of the plan: which networks of which point, how long, how many seeds, where curves are kept."""

    name: str
    point: str
    networks: tuple[str, ...] | None  # None: every network of the point in networks.yaml
    steps: int
    seeds: tuple[int, ...]
    curve: tuple[int, ...] = ()


# SwinIR is cut from the long stages (README: 2.9x RELA's step time, 5.6x its latency, far off the front), so from
# the rate grid too: a rate chosen for it would serve no later stage (its 250-step job took 3x RELA's here).
FRONTIER_TINY = ("laformer_rela", "laformer_linear", TUNED, "nafnet", "restormer", "drunet", "dncnn")
RATE_NETWORKS = ("laformer_rela", "laformer_linear", "nafnet", "restormer", "drunet", "dncnn")
FRONTIER_SMALL = ("laformer_rela", "laformer_linear", "nafnet", "restormer")
STAGES = {
    "lr": Stage("lr", "tiny", RATE_NETWORKS, 250, (1,)),
    "choices": Stage("choices", "tiny", ("laformer_rela",), 500, (1, 2)),
    "frontier": Stage("frontier", "tiny", FRONTIER_TINY, 2000, (1, 2, 3), (250, 500, 1000, 2000)),
    "small": Stage("small", "small", FRONTIER_SMALL, 400, (1, 2), (250, 400)),  # README: cut from 600 to fit
    "demo": Stage("demo", "tiny", ("laformer_rela", TUNED), 800, (1, 2)),
}


def stage_args(args: argparse.Namespace, stage: Stage, lr: float, out: Path) -> argparse.Namespace:
    """The frontier's arguments for one group of a stage's jobs: its steps, its rate, its folder."""
    return argparse.Namespace(**{**vars(args), "steps": stage.steps, "lr": lr, "out": out})


def curve_overrides(stage: Stage) -> list[str]:
    """The ``laformer-train`` overrides that keep a checkpoint at each of the stage's curve steps."""
    if not stage.curve:
        return []
    steps = ",".join(map(str, stage.curve))
    return ["callbacks=[default,curve_checkpoints]", f"callbacks.curve_checkpoints.steps=[{steps}]"]


# --- stage 1: each network's rate ---------------------------------------------------------------------------------


def run_lr(fr: ModuleType, args: argparse.Namespace, extra: list[str], stage: Stage = STAGES["lr"]) -> dict:
    """The stage's networks at every rate of the grid; the rate best on validation (``rate_rule``: a fallback where
    the grid separates nothing), into ``chosen_lr.csv`` with the rule that set it.

    Network by network, LAformer RELA first: the choices stage needs only RELA's rate, so an interrupted grid
    leaves whole networks chosen rather than every network half done.
    """
    every, _ = fr.load_networks(args.networks_file)
    networks = [n for n in every if n.point == stage.point and (stage.networks is None or n.name in stage.networks)]
    records = []
    jobs = [(lr, n, seed) for n in networks for lr in GRID for seed in stage.seeds]
    for index, (lr, network, seed) in enumerate(jobs, 1):
        out = args.out / "stages" / "lr" / f"lr{lr:g}"
        summary = fr.train(network, seed, stage_args(args, stage, lr, out), extra, f"[lr {index}/{len(jobs)}]")
        row = fr.per_seed_rows({(network.key, seed): summary}, args.test_set, args.val_set)[0]
        records.append({**row, "lr": lr})
    write_csv(records, args.out / "stages" / "lr" / "lr_records.csv")
    chosen = select_by_validation(records, group=("point", "network"), setting="lr", score="val_psnr")
    rows = []
    for (point, name), choice in chosen.items():
        rule = rate_rule(choice["scores"])
        choice.update(setting=rule["lr"], score=choice["scores"].get(rule["lr"]))  # the fallback where nothing won
        rows.append({"point": point, "network": name, **rule, "val_psnr": choice["score"],
                     **{f"val_psnr_lr{lr:g}": choice["scores"].get(lr) for lr in GRID}})  # fmt: skip
    write_csv(rows, args.out / CHOSEN_LR.name)
    print(markdown_table(rows, {k: k for k in rows[0]} if rows else {}, {k: ".2f" for k in rows[0] if "psnr" in k}))
    return chosen


def rate_rule(scores: dict[float, float]) -> dict[str, Any]:
    """``{"lr", "how"}`` from one network's mean validation score at each rate: the best, unless the grid's spread is
    under ``SEPARATES_DB`` (nothing separated), in which case ``FALLBACK_LR``, saying so."""
    spread = max(scores.values()) - min(scores.values())
    if spread < SEPARATES_DB:
        return {"lr": FALLBACK_LR, "how": f"grid does not separate (spread {spread:.2f} dB < {SEPARATES_DB}): fallback"}
    return {"lr": max(scores, key=scores.get), "how": f"best on validation (spread {spread:.2f} dB)"}


def chosen_rates(out: Path) -> dict[str, float]:
    """``{network: rate}`` chosen at the tiny point (stage 1); the small point uses the same network's rate."""
    path = out / CHOSEN_LR.name
    if not path.is_file():
        raise SystemExit(f"no {path.name} in {out}: run `frontier.py --stage lr` first (it chooses each rate)")
    rates = {row["network"]: float(row["lr"]) for row in read_csv(path) if row.get("lr") is not None}
    rates.setdefault(TUNED, rates.get("laformer_rela", 1e-3))  # the tuned preset trains at RELA's rate
    return rates


# --- stage 2: LAformer's open choices -----------------------------------------------------------------------------


def load_variants(path: Path = VARIANTS_FILE) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path))


def variant_name(choice: str, value: str) -> str:
    """``qk_ratio-1.0``: a variant's network name and run folder (no ``=``, which Hydra's override values reject)."""
    return f"{choice}-{value}"


def run_choices(fr: ModuleType, args: argparse.Namespace, extra: list[str], stage: Stage = STAGES["choices"]) -> dict:
    """Each open choice's values at RELA's rate, 2 seeds; the best on validation per choice; then their combination."""
    spec = load_variants()
    reference, tolerance = [str(o) for o in spec["reference"]], float(spec["tolerance"])
    variants = {variant_name(c, v): o for c, values in spec["choices"].items() for v, o in values.items() if o}
    check_variants(variants, reference, tolerance)  # off the point: refused with its ratio before anything trains
    lr = chosen_rates(args.out)["laformer_rela"]
    out = args.out / "stages" / "choices"
    base = fr.Network(stage.point, "reference", tuple(reference), reference=True)
    networks = [base] + [fr.Network(stage.point, name, (*reference, *o), False) for name, o in variants.items()]
    scores: dict[str, dict[int, float | None]] = {}
    for seed in stage.seeds:
        for index, network in enumerate(networks, 1):
            summary = fr.train(network, seed, stage_args(args, stage, lr, out), extra, f"[choices {index}]")
            row = fr.per_seed_rows({(network.key, seed): summary}, args.test_set, args.val_set)[0]
            scores.setdefault(network.name, {})[seed] = row["val_psnr"]
    records = []
    for choice, values in spec["choices"].items():
        for value, overrides in values.items():
            name = variant_name(choice, value) if overrides else "reference"
            records += [{"choice": choice, "value": value, "seed": s, "val_psnr": v} for s, v in scores[name].items()]
    chosen = select_by_validation(records, group=("choice",), setting="value", score="val_psnr")
    picked = [spec["choices"][c][v["setting"]] for (c,), v in chosen.items()]
    name, preset = next(iter(spec["presets"].items()))  # variants.yaml: tiny-tuned, from tiny
    # `resize` (by hand, after a refusal): what brings a combination of costlier choices back onto the point
    combined = merge_overrides(reference, *picked, *([preset["resize"]] if preset.get("resize") else []))
    rows = [{"choice": c, "value": v["setting"], "val_psnr": v["score"], "overrides": " ".join(
        spec["choices"][c][v["setting"]])} for (c,), v in chosen.items()]  # fmt: skip
    if combined != reference:
        tuned = fr.Network(stage.point, TUNED, tuple(combined), False)
        costs = fr.cost([base, tuned])
        try:
            check_cost_point("the combination", costs[tuned.key]["macs_g"], costs[base.key]["macs_g"], tolerance)
        except ValueError as off:
            fix = f"set presets.{name}.resize in {VARIANTS_FILE.name} (its comments list sizes) and rerun the stage"
            raise SystemExit(f"{off}. Combined: {' '.join(combined)}; {fix}.") from None
        for seed in stage.seeds:
            summary = fr.train(tuned, seed, stage_args(args, stage, lr, out), extra, "[choices: combination]")
            row = fr.per_seed_rows({(tuned.key, seed): summary}, args.test_set, args.val_set)[0]
            scores.setdefault(TUNED, {})[seed] = row["val_psnr"]
        mean = _mean(scores[TUNED].values())
        better = mean is not None and mean > (_mean(scores["reference"].values()) or float("-inf"))
        rows.append({"choice": "combination", "value": "adopt" if better else "keep tiny", "val_psnr": mean,
                     "overrides": " ".join(combined)})  # fmt: skip
        from laformer.models.laformer import PRESETS

        print(f"{name!r}: {preset_entry(combined, PRESETS[preset['from']])}  (for laformer.models.laformer.PRESETS)")
    write_csv(rows, args.out / CHOICES.name)
    return chosen


def _mean(values: Any) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def tuned_overrides(out: Path) -> tuple[str, ...] | None:
    """The tuned preset's overrides if stage 2 adopted a combination on validation, else None (no tuned network)."""
    path = out / CHOICES.name
    if not path.is_file():
        return None
    row = next((r for r in read_csv(path) if r["choice"] == "combination"), None)
    return tuple(str(row["overrides"]).split()) if row and row["value"] == "adopt" else None


# --- stages 3-5: long jobs with curves; the demo-budget check --------------------------------------------------


def stage_networks(fr: ModuleType, args: argparse.Namespace, stage: Stage) -> list:
    """The stage's networks from networks.yaml, with the tuned LAformer (if stage 2 adopted one) where listed."""
    every, _ = fr.load_networks(args.networks_file)
    by_name = {n.name: n for n in every if n.point == stage.point}
    networks = []
    for name in stage.networks or tuple(by_name):
        if name == TUNED:
            overrides = tuned_overrides(args.out)
            if overrides is not None:
                networks.append(fr.Network(stage.point, TUNED, overrides, False))
        elif name in by_name:
            networks.append(by_name[name])
    return networks


def run_long(fr: ModuleType, args: argparse.Namespace, extra: list[str], stage: Stage, seeds: list[int]) -> None:
    """Train the stage's networks at their own rates (or the demo's), then score every kept checkpoint."""
    rates = chosen_rates(args.out) if stage.name != "demo" else {}
    out = args.out / "stages" / stage.name
    # --networks picks some of the stage's networks (a sitting too short for all of them); the report reads every one
    networks = fr.select(stage_networks(fr, args, stage), None, args.networks)
    if stage.name == "demo" and not any(n.name == TUNED for n in networks):
        print(f"stage demo: nothing to check, stage 2 adopted no tuned preset ({CHOICES.name} says keep tiny)")
        return
    jobs = [(n, s) for s in seeds for n in networks]
    for index, (network, seed) in enumerate(jobs, 1):
        lr = rates.get(network.name, DEMO_LR)
        fr.train(network, seed, stage_args(args, stage, lr, out), [*curve_overrides(stage), *extra],
                 f"[{stage.name} {index}/{len(jobs)}]")  # fmt: skip
        score_curve(fr.run_dir(out, network, seed), args.test_set, args.val_set)
    if stage.name == "demo":  # does the tuned preset also win at the demo's own budget, on validation?
        rows = []
        for network in networks:
            found = {s: read_summary(fr.run_dir(out, network, s)) for s in stage.seeds}
            found = {(network.key, s): v for s, v in found.items() if v is not None}
            values = [r["val_psnr"] for r in fr.per_seed_rows(found, args.test_set, args.val_set)]
            rows.append({"network": network.name, "seeds": len(values), "val_psnr": _mean(values)})
        write_csv(rows, args.out / "demo_check.csv")
        print(markdown_table(rows, {"network": "network", "seeds": "seeds", "val_psnr": "validation PSNR (dB)"},
                             {"val_psnr": ".2f"}))  # fmt: skip


def score_curve(folder: Path, test_set: str, val_set: str) -> list[dict[str, Any]]:
    """Each kept checkpoint of a job scored once on the held-out photos by ``laformer-eval`` (skipped if done)."""
    records = []
    for record in read_curve_records(folder):
        target = folder / "curve_eval" / f"step{record['step']:07d}"
        summary = read_summary(target)
        if summary is None:
            command = [sys.executable, "-m", "laformer.cli.evaluate", f"ckpt_path={record['checkpoint']}"]
            command += ["experiment=demo", "logger=csv", "callbacks.anchors.methods=[]", f"hydra.run.dir={target}"]
            subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            summary = read_summary(target)
        benchmarks = (summary or {}).get("benchmarks") or {}
        records.append({**record, "test_psnr": (benchmarks.get(test_set) or {}).get("psnr"),
                        "val_psnr": (benchmarks.get(val_set) or {}).get("psnr")})  # fmt: skip
    return records


# --- the report ---------------------------------------------------------------------------------------------------


def curve_records(fr: ModuleType, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every scored checkpoint of stages 3 and 4, keyed by point, network and seed."""
    rows = []
    for name in ("frontier", "small"):
        stage, out = STAGES[name], args.out / "stages" / name
        for network in stage_networks(fr, args, stage):
            for seed in stage.seeds:
                folder = fr.run_dir(out, network, seed)
                for record in score_curve(folder, args.test_set, args.val_set) if folder.is_dir() else []:
                    rows.append({"point": stage.point, "network": network.name, "seed": seed, **record})
    return rows


def run_report(fr: ModuleType, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The final-step table and Pareto plot of stages 3-4 (``results_fair.*``, ``frontier_fair.png``; latency from
    ``measurements.csv``, measuring only what is missing) and the learning curves (``learning_curves.*``)."""
    records = curve_records(fr, args)
    rows = learning_curve_rows(records, group=("point", "network"), score="test_psnr",
                               reference={"network": "laformer_rela"})  # fmt: skip
    write_csv(rows, args.out / "learning_curves.csv")
    summaries = {}
    for name in ("frontier", "small"):
        for network in stage_networks(fr, args, STAGES[name]):
            for seed in STAGES[name].seeds:
                found = read_summary(fr.run_dir(args.out / "stages" / name, network, seed))
                if found is not None:
                    summaries[network.key, seed] = found
    anchor_rows = fr.anchor_rows(summaries, args.test_set)
    anchors = {a["network"]: a["test_psnr"] for a in anchor_rows}
    networks = [n for name in ("frontier", "small") for n in stage_networks(fr, args, STAGES[name])]
    measured = fr.measure_all(networks, args) if args.measure == "yes" else {}
    seeds_rows = fr.per_seed_rows(summaries, args.test_set, args.val_set)
    table = fr.result_rows(networks, fr.cost(networks), seeds_rows, measured, args)
    tiny, small = STAGES["frontier"], STAGES["small"]
    header = (
        "# The fair frontier: each network at its own rate (chosen on validation), long enough to pass NL-means\n\n"
        f"Rates: `{CHOSEN_LR.name}`; tiny: {tiny.steps} steps, seeds {tiny.seeds}; small: {small.steps} steps, "
        f"seeds {small.seeds}. Held-out PSNR on `{args.test_set}`."
    )
    write_csv(seeds_rows, args.out / "results_fair_per_seed.csv")
    write_csv(table + anchor_rows, args.out / "results_fair.csv")
    (args.out / "results_fair.md").write_text(fr.render(table, anchor_rows, args, header))
    fr.plot(table, anchor_rows, args, args.out / "frontier_fair.png")
    title = "Held-out PSNR during training, each network at its own rate"
    plot_learning_curves(rows, args.out / "learning_curves.png", ("point", "network"), "test_psnr", lines=anchors,
                         title=title)  # fmt: skip
    return rows


def composed_recipe(fr: ModuleType, extra: list[str]) -> dict[str, Any]:
    """The study's recipe as ``laformer-train`` composes it (``conf/``, the frontier's ``RECIPE``, the extra
    overrides, the point's reference network), flattened to ``{"module.optimizer.lr": ...}``, interpolations left
    as written so that nothing machine-specific (``paths``) is compared."""
    from omegaconf import OmegaConf

    from laformer.benchmarks.networks import compose_train_config

    cfg = OmegaConf.to_container(compose_train_config([*fr.RECIPE, "model=tiny", *extra]), resolve=False)
    cfg.pop("paths", None)
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node

    walk(cfg, "")
    return flat


def check_recipe(fr: ModuleType, out: Path, extra: list[str]) -> None:
    """Refuse to train when the recipe differs from the one the study's first jobs trained with.

    Each job is refused if its own overrides change (``laformer.sweeps.start_job``), but the recipe behind
    ``experiment=demo`` lives in ``conf/``: an edit there between two sittings (another optimiser, another crop)
    would give a stage's later jobs another recipe than its earlier ones, silently. The first stage that runs keeps
    the composed recipe in ``stages/recipe.yaml`` (committed with the records); every later run composes it again and
    stops, naming each key that changed, before anything trains.
    """
    import yaml

    path = out / "stages" / RECIPE_FILE
    now = composed_recipe(fr, extra)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(now, sort_keys=True))
        return
    kept = yaml.safe_load(path.read_text()) or {}
    changed = sorted(k for k in set(kept) | set(now) if kept.get(k, "<absent>") != now.get(k, "<absent>"))
    if changed:
        shown = "; ".join(f"{k}: {kept.get(k, '<absent>')!r} -> {now.get(k, '<absent>')!r}" for k in changed[:8])
        raise SystemExit(
            f"the recipe changed since this study's first jobs ({path}): {shown}"
            + (f" (and {len(changed) - 8} more)" if len(changed) > 8 else "")
            + ". Restore those settings in conf/ (or the extra overrides), or start a new study with another --out."
        )


def run_stage(name: str, fr: ModuleType, args: argparse.Namespace, extra: list[str]) -> Any:
    """``frontier.py --stage NAME``: one stage of the plan (``--seeds`` picks the seeds of a long stage)."""
    if name != "report":
        check_recipe(fr, args.out, extra)
    if name == "lr":
        return run_lr(fr, args, extra)
    if name == "choices":
        return run_choices(fr, args, extra)
    if name in ("frontier", "small", "demo"):
        stage = STAGES[name]
        seeds = [s for s in args.seeds if s in stage.seeds] if args.seeds_given else list(stage.seeds)
        return run_long(fr, args, extra, stage, seeds)
    if name == "report":
        return run_report(fr, args)
    raise SystemExit(f"unknown stage {name!r}; choose from lr, choices, frontier, small, demo, report")
