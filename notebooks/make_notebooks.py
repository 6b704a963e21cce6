"""Write the walkthrough notebooks from the cell sources below, and optionally execute them in place.

    python notebooks/make_notebooks.py             # write 01_restore_a_photo.ipynb, 02_attention_rank.ipynb
    python notebooks/make_notebooks.py --execute   # ... and run them top to bottom, keeping the outputs

Edit the cells here rather than in the .ipynb files, so the notebooks stay reviewable as plain Python.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

RESTORE_A_PHOTO = [
    new_markdown_cell(
        "# Restore a photo\n\n"
        "Load a trained network, add Gaussian noise to a photo bundled with scikit-image, restore it, and compare "
        "noisy, restored and clean images.\n\n"
        "Set `LAFORMER_CKPT` (or `CKPT` below) to a checkpoint written by `laformer-train`, e.g. "
        "`outputs/demo/runs/<run>/checkpoints/last.ckpt`, of a LAformer or of any peer network the suite trains "
        "(`model=nafnet`, ...), or to a published NAFNet / SwinIR / Restormer / DRUNet / DnCNN `.pth` as its "
        "authors release it (recognised through spandrel). Without one, the notebook first trains the demo's tiny "
        "RELA model for a few dozen steps through the suite's own `train()` (about two minutes on a CPU). Such a "
        "short run restores far less than the full demo: it shows the workflow, not the model's quality. "
        "No download is needed either way."
    ),
    new_code_cell(
        "import os\n"
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import matplotlib.pyplot as plt\n"
        "import torch\n\n"
        "from laformer.data.degradations import GaussianNoise\n"
        "from laformer.data.demo import load_demo_photo\n"
        "from laformer.inference.checkpoint import load_network\n"
        "from laformer.metrics import EvalProtocol, score\n\n"
        'CKPT = os.environ.get("LAFORMER_CKPT")  # or a path: "outputs/demo/runs/<run>/checkpoints/last.ckpt"\n'
        "SIGMA = 25.0  # the demo's noise level, on the 0-255 scale\n"
        "TRAIN_STEPS = 60  # only used when there is no checkpoint"
    ),
    new_markdown_cell(
        "## A checkpoint\n\n"
        "With no checkpoint given, compose the real Hydra config of the demo (as `laformer-train` would) with a "
        "short budget, and train. The run folder gets the usual `summary.json`, `val_grid.png` and checkpoints."
    ),
    new_code_cell(
        "if CKPT is None:\n"
        "    from hydra import compose, initialize_config_dir\n\n"
        "    from laformer.cli.train import train\n"
        "    from laformer.runs import config_dir\n\n"
        '    run_dir = Path(tempfile.mkdtemp(prefix="laformer_notebook_"))\n'
        "    overrides = [\n"
        '        "experiment=demo",\n'
        '        "logger=csv",\n'
        '        "callbacks.progress_bar=null",\n'
        '        f"trainer.max_steps={TRAIN_STEPS}",\n'
        '        f"trainer.val_check_interval={TRAIN_STEPS}",\n'
        '        "data.val_crop=128",\n'
        '        f"paths.output_dir={run_dir}",\n'
        "    ]\n"
        '    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):\n'
        '        cfg = compose(config_name="train", overrides=overrides)\n'
        "    summary = train(cfg)\n"
        '    CKPT = summary["last_checkpoint"]\n'
        'print("checkpoint:", CKPT)'
    ),
    new_markdown_cell(
        "## Restore a held-out photo\n\n"
        "`chelsea` is one of the demo's validation photos: the model never trained on it. The network rebuilds "
        "itself from the config stored inside the checkpoint, and takes the whole photo in one pass "
        "(any size; it pads to its size multiple, `net.info.size_multiple`, and crops back)."
    ),
    new_code_cell(
        "net, net_config = load_network(CKPT)\n"
        'print({k: v for k, v in net_config.items() if v is not None and k != "_target_"})\n\n'
        'clean = torch.from_numpy(load_demo_photo("chelsea").copy()).permute(2, 0, 1).unsqueeze(0).float() / 255\n'
        "noisy = GaussianNoise(SIGMA)(clean, torch.Generator().manual_seed(0))\n"
        "with torch.no_grad():\n"
        "    restored = net(noisy).clamp(0, 1)\n\n"
        "protocol = EvalProtocol()  # RGB, 8-bit, no border crop: the demo's scoring\n"
        "before, after = score(noisy.clamp(0, 1), clean, protocol), score(restored, clean, protocol)\n"
        "print(f\"noisy:    PSNR {before['psnr'].item():.2f} dB, SSIM {before['ssim'].item():.4f}\")\n"
        "print(f\"restored: PSNR {after['psnr'].item():.2f} dB, SSIM {after['ssim'].item():.4f}\")"
    ),
    new_code_cell(
        "# The training run above saved its val_grid.png through matplotlib's file backend: draw inline again,\n"
        "# as JPEG (noisy photos barely compress as PNG).\n"
        "%matplotlib inline\n"
        "%config InlineBackend.figure_formats = ['jpeg']\n\n\n"
        "def show(image):\n"
        "    return image[0].permute(1, 2, 0).clamp(0, 1).numpy()\n\n\n"
        "error = (restored - clean).abs().mean(1)[0]  # mean absolute error over the colour channels\n"
        "fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))\n"
        "panels = [\n"
        "    (show(noisy), f\"noisy ({before['psnr'].item():.2f} dB)\"),\n"
        "    (show(restored), f\"restored ({after['psnr'].item():.2f} dB)\"),\n"
        '    (show(clean), "clean"),\n'
        "]\n"
        "for ax, (image, title) in zip(axes, panels):\n"
        "    ax.imshow(image)\n"
        "    ax.set_title(title)\n"
        '    ax.axis("off")\n'
        'im = axes[3].imshow(error.numpy(), cmap="magma", vmin=0, vmax=0.15)\n'
        'axes[3].set_title("|restored - clean|")\n'
        'axes[3].axis("off")\n'
        "fig.colorbar(im, ax=axes[3], fraction=0.046)\n"
        "fig.tight_layout()"
    ),
]

ATTENTION_RANK = [
    new_markdown_cell(
        "# Attention maps and their rank: vanilla linear vs RELA\n\n"
        "Vanilla linear attention never forms its N x N map, but the map exists: "
        "`A = diag(1/z) phi(Q) phi(K)^T`, whose rank is at most the head dimension d. RELA adds a depthwise "
        "convolution on the values, which is one banded N x N matrix per channel, so channel c sees `A + M_c`, "
        "whose rank can reach N. Here we build both maps on a real photo crop and look at them and at their "
        "singular values.\n\n"
        "By default the two networks are untrained and share every common weight (seeded), so the first block "
        "sees the same q, k and v in both and the maps differ only by RELA's term. Set `LAFORMER_CKPT_LINEAR` "
        "and `LAFORMER_CKPT_RELA` (e.g. to the attention ablation's checkpoints) to look at trained networks."
    ),
    new_code_cell(
        "import os\n\n"
        "import matplotlib.pyplot as plt\n"
        "import torch\n\n"
        "from laformer.data.demo import center_crop, load_demo_photo\n"
        "from laformer.inference.checkpoint import load_network\n"
        "from laformer.models import LAformer\n"
        "from laformer.models.rank import DEFAULT_RTOL, attention_rank_report, capture_attention_inputs, "
        "effective_attention_maps\n\n"
        "SIDE = 32  # photo crop: N = 1024 tokens at full resolution\n"
        'CKPTS = {"linear": os.environ.get("LAFORMER_CKPT_LINEAR"), "rela": os.environ.get("LAFORMER_CKPT_RELA")}'
    ),
    new_code_cell(
        "torch.manual_seed(0)\n"
        'rela = LAformer.from_preset("tiny", attention="rela")\n'
        'linear = LAformer.from_preset("tiny", attention="linear")\n'
        'linear.load_state_dict({k: v for k, v in rela.state_dict().items() if ".spatial.dwconv." not in k})\n'
        'models = {"linear": linear, "rela": rela}\n'
        "for name, path in CKPTS.items():\n"
        "    if path:\n"
        "        models[name] = load_network(path)[0]\n"
        'state = "trained" if any(CKPTS.values()) else "untrained"\n'
        "models = {name: model.double().eval() for name, model in models.items()}\n\n"
        'photo = center_crop(load_demo_photo("chelsea"), SIDE)\n'
        "x = torch.from_numpy(photo.copy()).permute(2, 0, 1).unsqueeze(0).double() / 255\n"
        "plt.figure(figsize=(2.5, 2.5))\n"
        "plt.imshow(photo)\n"
        'plt.title(f"input crop, {SIDE} x {SIDE}")\n'
        'plt.axis("off");'
    ),
    new_markdown_cell(
        "## The maps of the first block\n\n"
        "The first block works at full resolution with one head. For RELA we show channel 0 of that head "
        "(each channel has its own depthwise kernel). Top row: the whole N x N map. Bottom row: the map's row for "
        "the centre pixel, laid out on the image grid, i.e. where that pixel takes its information from."
    ),
    new_code_cell(
        "maps = {}\n"
        "for name, model in models.items():\n"
        "    first = capture_attention_inputs(model, x)[0]  # encoders.0.0, full resolution\n"
        "    maps[name] = effective_attention_maps(first)[0, 0].detach()  # head 0, channel 0: (N, N)\n"
        "centre = (SIDE // 2) * SIDE + SIDE // 2\n"
        "\n\ndef draw(ax, image, title):\n"
        "    # non-negative maps (linear attention) on a sequential scale, signed ones (RELA) centred on zero\n"
        "    signed = bool(image.min() < 0)\n"
        "    limit = image.abs().max().item()\n"
        '    cmap, low = ("RdBu_r", -limit) if signed else ("viridis", image.min().item())\n'
        "    im = ax.imshow(image.numpy(), cmap=cmap, vmin=low, vmax=limit)\n"
        "    ax.set_title(title)\n"
        "    fig.colorbar(im, ax=ax, fraction=0.046)\n\n\n"
        "fig, axes = plt.subplots(2, 2, figsize=(9, 8.5))\n"
        "for col, (name, m) in enumerate(maps.items()):\n"
        '    draw(axes[0, col], m, f"{name} ({state}): N x N map")\n'
        '    draw(axes[1, col], m[centre].reshape(SIDE, SIDE), f"{name}: weights of the centre pixel")\n'
        "fig.tight_layout()"
    ),
    new_markdown_cell(
        "## Singular value spectra\n\n"
        "Singular values of the same maps, divided by the largest, on a log scale. The numerical rank counts "
        "those above the dashed line (`rtol` = 1e-6). Linear attention falls off a cliff after d = 8 values; "
        "RELA's spectrum stays up across all N."
    ),
    new_code_cell(
        "fig, ax = plt.subplots(figsize=(7, 4))\n"
        "for name, m in maps.items():\n"
        "    s = torch.linalg.svdvals(m)\n"
        "    s = s / s[0]\n"
        "    rank = int((s > DEFAULT_RTOL).sum())\n"
        '    ax.semilogy(s.clamp_min(1e-20).numpy(), label=f"{name}: rank {rank} of {len(s)}")\n'
        'ax.axhline(DEFAULT_RTOL, color="black", linestyle="--", linewidth=1)\n'
        'ax.set_xlabel("index")\n'
        'ax.set_ylabel("singular value / largest")\n'
        'ax.set_title(f"first block, {state}")\n'
        "ax.legend();"
    ),
    new_markdown_cell(
        "## Every head, every level\n\n"
        "`attention_rank_report` does the same for every head of every block. The levels below full "
        "resolution have a quarter of the tokens each; for RELA the rank is given over the head's channels."
    ),
    new_code_cell(
        "levels = {}  # (attention, tokens N, head dim d) -> the rows of every head at that level\n"
        "for name, model in models.items():\n"
        "    for row in attention_rank_report(model, x):\n"
        "        levels.setdefault((name, row['tokens'], row['head_dim']), []).append(row)\n\n"
        'print("attention  tokens N  head dim d  heads  rank min  rank max")\n'
        "for (name, n, d), rows in levels.items():\n"
        "    low, high = min(r['rank_min'] for r in rows), max(r['rank_max'] for r in rows)\n"
        '    print(f"{name:<9}{n:>10}{d:>12}{len(rows):>7}{low:>10}{high:>10}")'
    ),
]

NOTEBOOKS = {"01_restore_a_photo.ipynb": RESTORE_A_PHOTO, "02_attention_rank.ipynb": ATTENTION_RANK}


def build(name: str) -> nbformat.NotebookNode:
    notebook = new_notebook(cells=[nbformat.from_dict(cell) for cell in NOTEBOOKS[name]])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def execute(notebook: nbformat.NotebookNode, timeout: int = 900) -> nbformat.NotebookNode:
    """Run every cell in a fresh ``python3`` kernel (the interpreter running this script)."""
    from nbclient import NotebookClient

    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": HERE}}).execute()
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run the notebooks and keep their outputs")
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="which notebooks (default: all)")
    args = parser.parse_args()
    for name in args.names:
        notebook = build(name)
        if args.execute:
            notebook = execute(notebook)
        nbformat.write(notebook, HERE / name)
        print(f"wrote {HERE / name}{' (executed)' if args.execute else ''}")


if __name__ == "__main__":
    main()
