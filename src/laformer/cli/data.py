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
from hydra.errors import HydraException

from laformer.cli.errors import EXIT_USER_ERROR, one_line_errors
from laformer.data.benchmark import BenchmarkDataModule
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
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    if args.command == "list":
        print(registry_table())
        return 0
    try:
        with one_line_errors("laformer-data", debug=args.debug):
            module = build_datamodule(args.overrides)
            if not isinstance(module, BenchmarkDataModule):
                print(f"{type(module).__name__}: bundled data, nothing on disk to verify.")
                return 0
            ok, report = verify(module, full=not args.quick)
    except SystemExit as exit_:
        return int(exit_.code) if isinstance(exit_.code, int) else EXIT_USER_ERROR
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
