"""``laformer-app --ckpt CKPT_OR_MODEL_FOLDER``: a web page to restore your own photo (the optional ``app`` extra).

Upload a photo (PNG, JPEG, TIFF, BMP; 8 or 16 bit; grey or colour) or pick a bundled one, optionally add the
degradation the model was trained for, and compare before and after in a slider; the full-resolution result
downloads at the input's bit depth. Restoration is ``laformer-restore``'s own path (``restore_array``). Requests
queue: one restores at a time on a CPU (``--concurrency`` more on a GPU), and each page shows its place in the
queue. The server listens on 127.0.0.1 unless ``--host`` says otherwise; it makes no share link and sends no
analytics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

from laformer.app.service import DEFAULT_MAX_PIXELS, RestoreOptions, Restorer
from laformer.cli.errors import exit_status
from laformer.cli.restore import add_engine_options
from laformer.inference.restore import DEVICES, PRECISIONS
from laformer.inference.tiling import DEFAULT_OVERLAP, default_overlap

# Upload limit from the pixel limit: an uncompressed 16-bit RGB TIFF takes 6 bytes a pixel, plus headers.
BYTES_PER_PIXEL_LIMIT = 8
UPLOAD_HEADROOM = 16 * 2**20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laformer-app",
        description="Serve a web page that restores uploaded photos with a laformer-train checkpoint.",
    )
    parser.add_argument(
        "--ckpt",
        "--model",
        dest="ckpt",
        type=Path,
        required=True,
        help="checkpoint (a run's checkpoints/last.ckpt) or model folder (laformer-export --format safetensors)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 serves other machines)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA, else MPS, else CPU")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32", help="fp16 needs a GPU")
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="SIZE",
        help="restore in SIZE x SIZE tiles (a multiple of the network's size multiple: 8 for LAformer, 16 for NAFNet)",
    )
    parser.add_argument("--tile-overlap", type=int, default=None, metavar="PIXELS", help="default 32")
    parser.add_argument("--tile-batch", type=int, default=1, metavar="N", help="tiles restored together")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"largest photo accepted, in pixels (default {DEFAULT_MAX_PIXELS:,}: 3840 x 2160)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="restorations at once (above 1 needs a GPU)"
    )
    parser.add_argument("--queue-size", type=int, default=32, metavar="N", help="requests that may wait at once")
    add_engine_options(parser)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a start-up error")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    # The tile's multiple is the network's: checked once the model is loaded (laformer.inference.tiling.check_tiles).
    if args.tile is not None:
        if args.tile_overlap is None:
            args.tile_overlap = default_overlap(args.tile)
        if args.tile <= 0:
            parser.error(f"--tile must be a positive multiple of the network's size multiple, got {args.tile}")
    elif args.tile_overlap is None:
        args.tile_overlap = DEFAULT_OVERLAP
    for name in ("tile_batch", "max_pixels", "concurrency", "queue_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    try:
        from laformer.app import ui
    except ImportError as exc:
        print(
            f"laformer-app: error: the web demo needs the optional app extra ({exc}); "
            "install it with: pip install -e '.[app]'",
            file=sys.stderr,
        )
        return 2
    options = RestoreOptions(
        device=args.device,
        precision=args.precision,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        tile_batch=args.tile_batch,
        max_pixels=args.max_pixels,
        backend=args.backend,
        compile=args.compile,
        compile_shapes=args.compile_shapes,
    )
    return exit_status("laformer-app", lambda: serve(args, options, ui), debug=args.debug)


def serve(args: argparse.Namespace, options: RestoreOptions, ui: ModuleType) -> int:
    """Load the model (refusing a --tile the network cannot take) and serve the page until stopped."""
    restorer = Restorer.from_path(args.ckpt, options)
    if args.concurrency > 1 and restorer.device.type == "cpu":
        print(
            f"laformer-app: error: --concurrency {args.concurrency} needs a GPU; on the CPU photos are restored "
            "one at a time (parallel passes would only share the same cores)",
            file=sys.stderr,
        )
        return 2
    print(f"laformer-app: {args.ckpt} on {restorer.mode()}; open http://{args.host}:{args.port}", flush=True)
    ui.launch(
        restorer,
        host=args.host,
        port=args.port,
        concurrency=args.concurrency,
        queue_size=args.queue_size,
        max_file_size=args.max_pixels * BYTES_PER_PIXEL_LIMIT + UPLOAD_HEADROOM,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
