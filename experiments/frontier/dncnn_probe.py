"""Why DnCNN stayed at the noisy input's level in the frontier: a short, hand-written training loop that logs what
Adam does (README, "Why DnCNN did not learn").

The network is the frontier's (``model=dncnn model.preset=small model.nc=28``, 10 layers with batch norm, built by
``laformer.benchmarks.networks.build`` as ``laformer-train`` builds it), the loss Charbonnier (eps 1e-3), the
optimiser AdamW (weight decay 1e-4), gradients clipped by norm, Gaussian noise sigma 25 clipped and 8-bit, crops of
the demo's training photos. Every 25 steps it prints the mean training loss of the last 25 steps (returning the
noisy input costs ~0.078), the gradient norm before clipping, Adam's step size as the RMS of the parameter update
over the learning rate (1.0: full steps; small: the second moment remembers larger gradients, or the first moment
averages noisy ones away), and the PSNR of a validation photo's centre crop (coffee) in eval mode (batch norm's
running statistics) and with the photo's own batch statistics.

    python experiments/frontier/dncnn_probe.py --lr 1e-3 --clip 1.0 --steps 300
    python experiments/frontier/dncnn_probe.py --lr 1e-3 --clip 1.0 --beta2 0.9 --steps 300
    python experiments/frontier/dncnn_probe.py --lr 1e-3 --warmup 20 --cosine --batch 8 --crop 64 --steps 250

One thread, a few seconds to minutes per run; only losses and PSNR are compared, never times.
"""

from __future__ import annotations

import argparse
import math
from copy import deepcopy as copy_module

import numpy as np
import torch

from laformer.benchmarks.networks import build
from laformer.data.demo import DEMO_TRAIN, center_crop, load_demo_photo

SIGMA = 25 / 255


def as_tensor(image: np.ndarray) -> torch.Tensor:
    """(3, H, W) float in [0, 1] from a photo (grey ones repeated on three channels)."""
    image = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / scale


def noisy(clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise, clipped and stored 8-bit, as the demo's degradation."""
    return (clean + SIGMA * torch.randn(clean.shape, generator=generator)).clamp(0, 1).mul(255).round().div(255)


def psnr(restored: torch.Tensor, clean: torch.Tensor) -> float:
    return 10 * math.log10(1 / float(((restored.clamp(0, 1) - clean) ** 2).mean()))


def batch_statistics(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` whose batch norms normalise by the input's own statistics (as in training), not the
    running ones: the gap to eval mode is what the running statistics cost on this photo."""
    copy = copy_module(net)
    for module in copy.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.train()
            module.track_running_stats = False
            module.running_mean = module.running_var = None
    return copy


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip", type=float, default=None, help="gradient-norm clipping (default: none)")
    parser.add_argument("--beta2", type=float, default=0.999)
    parser.add_argument("--warmup", type=int, default=0, help="linear warm-up steps")
    parser.add_argument("--cosine", action="store_true", help="cosine decay to 0 after the warm-up")
    parser.add_argument("--act", default="BR", help="BR: batch norm + ReLU (the frontier's); R: no batch norm")
    parser.add_argument("--nc", type=int, default=28)
    parser.add_argument("--nb", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--val", default="coffee", help="a validation photo of the demo (never a held-out one)")
    return parser.parse_args(argv)


def rate(args: argparse.Namespace, step: int) -> float:
    warm = min(1.0, step / args.warmup) if args.warmup else 1.0
    if not args.cosine:
        return args.lr * warm
    progress = max(0, step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng, generator = np.random.default_rng(args.seed), torch.Generator().manual_seed(1000 + args.seed)
    photos = [as_tensor(load_demo_photo(name)) for name in DEMO_TRAIN]
    val_clean = as_tensor(center_crop(load_demo_photo(args.val), 96))[None]
    val_noisy = noisy(val_clean, torch.Generator().manual_seed(7))
    overrides = ["model=dncnn", "model.preset=small", f"model.nc={args.nc}", f"model.nb={args.nb}"]
    net = build([*overrides, f"model.act_mode={args.act}"], seed=args.seed)
    params = list(net.parameters())
    count = sum(p.numel() for p in params)
    optimiser = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, args.beta2), weight_decay=1e-4)
    print(f"validation input {psnr(val_noisy, val_clean):.2f} dB; {vars(args)}")
    losses: list[float] = []
    for step in range(1, args.steps + 1):
        crops = []
        for _ in range(args.batch):
            photo = photos[rng.integers(len(photos))]
            top, left = rng.integers(photo.shape[1] - args.crop), rng.integers(photo.shape[2] - args.crop)
            crops.append(photo[:, top : top + args.crop, left : left + args.crop])
        clean = torch.stack(crops)
        lr = rate(args, step)
        for group in optimiser.param_groups:
            group["lr"] = lr
        net.train()
        loss = torch.sqrt((net(noisy(clean, generator)) - clean) ** 2 + 1e-6).mean()
        losses.append(loss.item())
        optimiser.zero_grad()
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(params, args.clip or float("inf")))
        before = [p.detach().clone() for p in params]
        optimiser.step()
        update = math.sqrt(sum(float(((p.detach() - b) ** 2).sum()) for p, b in zip(params, before)) / count)
        if step in (1, 5) or step % 25 == 0:
            net.eval()
            with torch.no_grad():
                score = psnr(net(val_noisy), val_clean)
                batch_stats = psnr(batch_statistics(net)(val_noisy), val_clean)
            step_size = f"{update / lr:.3f}" if lr > 0 else "-"
            recent = losses[-25:]
            print(f"step {step:4d}  loss(last 25) {sum(recent) / len(recent):.4f}  grad norm {norm:.3f}  "
                  f"update RMS / lr {step_size}  validation {score:.2f} dB "
                  f"({batch_stats:.2f} with the photo's own batch statistics)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
