"""``laformer-data``: inspect datasets on disk before training.

    laformer-data list                                  # every data=NAME, its splits, layouts and scoring
    laformer-data verify data=gopro data.root=/data     # what was found (pairs, sizes, bit depth, layout)
    laformer-data verify data=sidd data.root=... --quick   # headers only: fast on large sets
    laformer-data pack data=gopro data.root=/data --out /fast/gopro-train   # decoded pixels for training
    laformer-data verify data=gopro data.root=/data data.store=packed data.store_path=/fast/gopro-train

The data config is composed with Hydra, so any ``data.*`` override of training works here too.
``verify``: exit status 0 when every split (and the packed store, with ``data.store``) is found and valid, 1
otherwise. ``pack``: 0 when the store is complete; 2 for a refusal (one line naming the store and the fix); 1 when
the disk filled (the chunks already packed are kept: the same command continues); 130 on Ctrl-C (likewise).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException

from laformer.cli.errors import exit_status, one_line_errors
from laformer.data.benchmark import BenchmarkDataModule
from laformer.data.checks import check_pairs
from laformer.data.store import StoreError, pack
from laformer.data.verify import registry_table, verify
from laformer.runs import config_dir, register_resolvers


def build_datamodule(overrides: Sequence[str]):
    """The data module ``data=NAME data.root=...`` describes, without touching the disk."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        try:
            cfg = compose(config_name="verify", overrides=list(overrides))
        except HydraException as exc:  # an unknown data=NAME or a malformed override: the user's to fix
            raise ValueError(str(exc).strip().splitlines()[0]) from None
    return hydra.utils.instantiate(cfg.data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="laformer-data", description="Inspect restoration datasets on disk.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="report what a dataset's folders hold, or what is missing")
    check.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=gopro data.root=/data/GoPro")
    check.add_argument("--quick", action="store_true", help="read image headers only (no full decode)")
    check.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands.add_parser("list", help="list every registered dataset")
    packer = commands.add_parser("pack", help="pack a paired dataset's split into a store of decoded pixels")
    packer.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=gopro data.root=/data/GoPro")
    packer.add_argument("--out", help="the store's folder (default: data.store_path, else ./packed/NAME-SPLIT)")
    packer.add_argument("--split", default="train", help="the split to pack (training reads the train split)")
    packer.add_argument("--chunk-pairs", type=int, default=8, help="pairs per LitData chunk (a new store only)")
    packer.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    if args.command == "list":
        print(registry_table())
        return 0
    if args.command == "pack":
        return pack_command(args)
    return exit_status("laformer-data", lambda: verify_command(args), debug=args.debug)


def verify_command(args: argparse.Namespace) -> int:
    """``laformer-data verify``: what the dataset's folders (or its packed store) hold; 1 when a split is bad."""
    module = build_datamodule(args.overrides)
    if not isinstance(module, BenchmarkDataModule):
        print(f"{type(module).__name__}: bundled data, nothing on disk to verify.")
        return 0
    ok, report = verify(module, full=not args.quick)
    print(report)
    return 0 if ok else 1


def store_folder(module: BenchmarkDataModule, out: str | None, split: str) -> Path:
    """Where ``pack`` writes: ``--out``, else ``data.store_path``, else ``./packed/<name>-<split>``."""
    return Path(out or module.store_path or f"packed/{module.spec.name}-{split}").expanduser()


def pack_command(args: argparse.Namespace) -> int:
    """``laformer-data pack``: the split's pairs, as ``verify`` finds them, into a packed store (resumable)."""
    return exit_status("laformer-data", lambda: pack_store(args), debug=args.debug)


def pack_store(args: argparse.Namespace) -> int:
    module = build_datamodule(args.overrides)
    if not isinstance(module, BenchmarkDataModule):
        raise ValueError("bundled data (data=demo) has nothing on disk to pack; name a dataset: data=NAME")
    if module.spec.kind != "paired":
        raise ValueError(
            f"{module.spec.title} holds no stored pairs ({module.spec.kind} images); pack is for paired sets"
        )
    if args.chunk_pairs < 1:
        raise ValueError(f"--chunk-pairs must be a positive integer, got {args.chunk_pairs}")
    store = store_folder(module, args.out, args.split)
    found, content = module.content(module.spec.name, args.split)
    if not content.pairs:
        raise StoreError(f"{module.spec.title} {args.split} split holds no pairs to pack into {store}")
    # Unreadable files and size mismatches fail now, not mid-packing; the training patch is checked when a run
    # opens the store (its manifest keeps the smallest image).
    what = f"{module.spec.title} {args.split} split ({found.layout.name} layout at {found.base})"
    check_pairs(content.pairs, what, "header", None, module.spec.size_mismatch)
    kept = f"the chunks already packed in {store} are kept"
    hint = f"{kept}; free some space and run the same command to continue"
    title = f"{module.spec.title} {args.split}"
    # Its own hints for a full disk or Ctrl-C while packing; the SystemExit it raises passes through exit_status.
    with (
        one_line_errors("laformer-data", debug=args.debug, disk_hint=hint, interrupted=f"{kept}, rerun to continue"),
        pack_progress(title) as progress,
    ):
        result = pack(
            content.pairs,
            store,
            module.store_policy(args.split),
            source=str(found.base),
            layout=found.layout.name,
            chunk_pairs=args.chunk_pairs,
            progress=progress,
        )
    print(result.report(title))
    print(f"train on it: data={module.spec.name} data.store=packed data.store_path={result.store}")
    return 0


@contextlib.contextmanager
def pack_progress(title: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (pairs packed, rate, time left), updated after each chunk."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(f"packing {title}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=Console(stderr=True))
    task = bar.add_task("pack", total=None)

    def update(done: int, total: int) -> None:
        if not bar.live.is_started:  # shown once the store is accepted: a refusal stays one line
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        bar.stop()


if __name__ == "__main__":
    sys.exit(main())
