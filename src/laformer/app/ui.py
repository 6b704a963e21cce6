"""The gradio page of ``laformer-app``: upload or pick a photo, restore it, compare before and after.

All work on the photo happens in :mod:`laformer.app.service`; this module only lays out the page, queues the
requests and turns :class:`~laformer.app.service.AppError` into a message in the page. Nothing here reaches the
network: analytics are off, no share link is made, and the theme's fonts come from the installed package.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: it reads this at import
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr

from laformer.app.service import (
    BUNDLED_PHOTOS,
    DEGRADATION_KINDS,
    AppError,
    Degradation,
    Request,
    RequestFolders,
    Restoration,
    Restorer,
    bundled_photo_label,
    handle_request,
)
from laformer.data.io import IMAGE_EXTENSIONS

log = logging.getLogger("laformer.app")

API_NAME = "restore"
CHANNELS = {1: "grey", 3: "RGB"}


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} dB"


def status_markdown(restoration: Restoration) -> str:
    info = restoration.summary()
    lines = [
        f"**{info['name']}**: {info['width']} x {info['height']}, {CHANNELS.get(info['channels'], info['channels'])}, "
        f"{info['bit_depth']} bit; restored in **{restoration.seconds:.2f} s** ({restoration.mode})",
    ]
    if restoration.psnr_restored is not None:
        gain = restoration.psnr_restored - (restoration.psnr_input or 0.0)
        lines.append(
            f"Added {info['degradation']}. PSNR against the clean photo: input {_db(restoration.psnr_input)} → "
            f"restored **{_db(restoration.psnr_restored)}** ({gain:+.2f} dB)"
        )
    else:
        lines.append("The photo went in as it is: no clean reference, so no PSNR (add a degradation to get one).")
    return "\n\n".join(lines)


def model_markdown(restorer: Restorer) -> str:
    (first_label, first_value), *rows = [*restorer.card.rows(), ("serving", restorer.mode())]
    table = "\n".join(f"| {label} | {value} |" for label, value in rows)
    return f"| {first_label} | {first_value} |\n|---|---|\n{table}"


def headline(restorer: Restorer) -> str:
    info = restorer.card.info
    trained = restorer.card.trained_degradation
    what = f", trained for {trained.describe()}" if trained else ""
    preset = f"{info.get('preset')} " if info.get("preset") else ""
    attention = f" ({info.get('attention')})" if info.get("attention") else ""
    return (
        f"# Restore a photo with LAformer\n{preset}{info.get('family')}{attention}, "
        f"{restorer.card.parameters / 1e6:.2f} M parameters{what}; {restorer.mode()}. "
        f"Photos up to {restorer.options.max_pixels / 1e6:.1f} Mpx; requests are queued."
    )


def build_app(restorer: Restorer, folders: RequestFolders | None = None) -> gr.Blocks:
    folders = folders or RequestFolders()
    trained = restorer.card.trained_degradation or Degradation()
    bundled = [(bundled_photo_label(name), name) for name in BUNDLED_PHOTOS]

    def restore(upload, photo, kind, noise_sigma, blur_sigma, jpeg_quality, seed, progress=gr.Progress()):  # noqa: B008
        def report(fraction: float | None, text: str) -> None:
            progress(fraction, desc=text)

        try:
            degradation = Degradation(
                kind=kind or "none",
                noise_sigma=float(noise_sigma),
                blur_sigma=float(blur_sigma),
                blur_kernel=trained.blur_kernel,
                blur_noise=trained.blur_noise,
                jpeg_quality=float(jpeg_quality),
                seed=int(seed or 0),
            )
            request = Request(upload=Path(upload) if upload else None, photo=photo or None, degradation=degradation)
            restoration, files = handle_request(restorer, request, folders.new(), progress=report)
        except AppError as exc:
            log.info("refused: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("restoration failed")
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise gr.Error(
                f"restoration failed ({first}); the server log has the details", print_exception=False
            ) from None
        return (
            (str(files.before), str(files.after)),
            status_markdown(restoration),
            str(files.result),
            restoration.summary(),
        )

    with gr.Blocks(title="LAformer photo restoration", analytics_enabled=False, delete_cache=(1800, 3600)) as app:
        gr.Markdown(headline(restorer), elem_id="headline")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                upload = gr.File(
                    label="Your photo (PNG, JPEG, TIFF or BMP; 8 or 16 bit; grey or colour)",
                    file_types=list(IMAGE_EXTENSIONS),
                    type="filepath",
                    elem_id="upload",
                )
                photo = gr.Dropdown(
                    choices=bundled,
                    value=None,
                    label="... or a bundled photo",
                    elem_id="photo",
                    allow_custom_value=False,
                )
                with gr.Accordion(
                    "Add a degradation first (then the clean photo is known and PSNR is shown)", open=True
                ):
                    kind = gr.Radio(
                        choices=list(DEGRADATION_KINDS),
                        value=trained.kind,
                        label="degradation (preset: what the model was trained for)",
                        elem_id="degradation",
                    )
                    noise_sigma = gr.Slider(
                        1,
                        max(100, trained.noise_sigma),
                        value=trained.noise_sigma,
                        step=1,
                        label="noise sigma (0-255 scale)",
                    )
                    blur_sigma = gr.Slider(
                        0.3,
                        max(8.0, trained.blur_sigma),
                        value=trained.blur_sigma,
                        step=0.1,
                        label="blur sigma (pixels)",
                    )
                    jpeg_quality = gr.Slider(5, 95, value=trained.jpeg_quality, step=1, label="JPEG quality")
                    seed = gr.Number(value=0, precision=0, label="noise seed")
                button = gr.Button("Restore", variant="primary", elem_id="restore")
            with gr.Column(scale=2, min_width=400):
                slider = gr.ImageSlider(
                    label="before / after: drag the handle; scroll to zoom, drag to pan",
                    type="filepath",
                    interactive=False,
                    max_height=720,
                    elem_id="slider",
                )
                status = gr.Markdown("Upload a photo or pick a bundled one, then press Restore.", elem_id="status")
                result = gr.File(label="Full-resolution result (input's size and bit depth)", elem_id="result")
                with gr.Accordion("Result details", open=False):
                    details = gr.JSON(label="result", elem_id="details")
        with gr.Accordion("Model", open=False, elem_id="model-info"):
            gr.Markdown(model_markdown(restorer))
            if restorer.card.summary is not None:
                gr.Markdown(f"Training summary: `{restorer.card.summary_path}`")
                gr.JSON(value=restorer.card.summary, label="summary.json")

        # One source at a time: an upload clears the bundled choice, and picking a bundled photo clears the upload.
        upload.upload(lambda: None, outputs=photo, queue=False, show_progress="hidden", api_visibility="private")
        photo.select(lambda: None, outputs=upload, queue=False, show_progress="hidden", api_visibility="private")
        button.click(
            restore,
            inputs=[upload, photo, kind, noise_sigma, blur_sigma, jpeg_quality, seed],
            outputs=[slider, status, result, details],
            api_name=API_NAME,
            show_progress="full",
        )
    return app


def launch(
    restorer: Restorer,
    host: str = "127.0.0.1",
    port: int = 7860,
    concurrency: int = 1,
    queue_size: int = 32,
    max_file_size: int | None = None,
    prevent_thread_lock: bool = False,
) -> gr.Blocks:
    """Serve the page: requests wait in gradio's queue (each sees its place) and ``concurrency`` run at once."""
    app = build_app(restorer)
    app.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        show_error=True,
        max_file_size=max_file_size,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=["api", "settings"],
        run_history=False,  # nothing recorded, no page offering to upload runs elsewhere
        prevent_thread_lock=prevent_thread_lock,
        quiet=False,
    )
    return app
