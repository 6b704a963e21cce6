"""``laformer-data``: inspect datasets on disk before training.

    laformer-data list                                  # every data=NAME, its splits, layouts and scoring
    laformer-data verify data=gopro data.root=/data     # what was found (pairs, sizes, bit depth, layout)
    laformer-data verify data=sidd data.root=... --quick   # headers only: fast on large sets

The data config is composed with Hydra, so any ``data.*`` override of training works here too.
Exit status 0 when every split is found and valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from laformer.data.benchmark import BenchmarkDataModule
from laformer.data.verify import registry_table, verify
from laformer.runs import config_dir, register_resolvers


def build_datamodule(overrides: Sequence[str]):
    """The data module ``data=NAME data.root=...`` describes, without touching the disk."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="verify", overrides=list(overrides))
    return hydra.utils.instantiate(cfg.data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="laformer-data", description="Inspect restoration datasets on disk.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="report what a dataset's folders hold, or what is missing")
    check.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=gopro data.root=/data/GoPro")
    check.add_argument("--quick", action="store_true", help="read image headers only (no full decode)")
    commands.add_parser("list", help="list every registered dataset")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    if args.command == "list":
        print(registry_table())
        return 0
    module = build_datamodule(args.overrides)
    if not isinstance(module, BenchmarkDataModule):
        print(f"{type(module).__name__}: bundled data, nothing on disk to verify.")
        return 0
    ok, report = verify(module, full=not args.quick)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
