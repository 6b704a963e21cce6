"""Speed options change speed only: the same loss (to 1e-4) and gradients after one step with each option,
and the throughput benchmark runs end to end at a toy size."""

from __future__ import annotations

import csv
import functools
import importlib.util
from pathlib import Path

import pytest
import torch

from laformer.models import LAformer
from laformer.training import RestorationModule

REPO = Path(__file__).resolve().parents[2]


def _one_step_loss(memory_format: str, compile: bool) -> tuple[float, torch.Tensor]:
    torch.manual_seed(0)
    module = RestorationModule(LAformer.from_preset("tiny", width=8), memory_format=memory_format, compile=compile)
    module.setup("fit")
    module.on_fit_start()
    generator = torch.Generator().manual_seed(1)
    batch = {"input": torch.rand(2, 3, 32, 32, generator=generator), "target": torch.rand(2, 3, 32, 32)}
    loss = module.training_step(batch, 0)
    loss.backward()
    return float(loss), module.net.embed.weight.grad.clone()


def test_channels_last_changes_nothing_but_speed() -> None:
    loss, grad = _one_step_loss("contiguous", False)
    loss_cl, grad_cl = _one_step_loss("channels_last", False)
    assert abs(loss - loss_cl) < 1e-4
    torch.testing.assert_close(grad, grad_cl, rtol=1e-3, atol=1e-5)


def test_channels_last_weights_are_set_before_the_strategy_wraps_the_model() -> None:
    """DDP lays out its gradient buckets like the parameters when it wraps the model (after ``setup``, before
    ``on_fit_start``): converting later made every DDP step warn "Grad strides do not match bucket view strides"."""
    module = RestorationModule(LAformer.from_preset("tiny", width=8), memory_format="channels_last")
    weight = module.net.embed.weight
    assert not weight.is_contiguous(memory_format=torch.channels_last)
    module.setup("fit")
    assert module.net.embed.weight.is_contiguous(memory_format=torch.channels_last)


def test_unknown_memory_format_is_refused() -> None:
    with pytest.raises(ValueError, match=r"module\.memory_format"):
        RestorationModule(LAformer.from_preset("tiny", width=8), memory_format="nhwc")


@pytest.mark.slow
def test_compile_changes_nothing_but_speed() -> None:
    loss, grad = _one_step_loss("contiguous", False)
    loss_c, grad_c = _one_step_loss("contiguous", True)
    assert abs(loss - loss_c) < 1e-4
    torch.testing.assert_close(grad, grad_c, rtol=1e-3, atol=1e-5)


@pytest.mark.slow  # 23 s on the AVX2 EPYC; the quick-mode test below runs the same script in the default run
def test_benchmark_writes_a_row_per_option(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("throughput_benchmark", REPO / "experiments/throughput/benchmark.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    toy = ["model.width=8", "data.patch_size=32", "data.batch_size=2", "data.repeat=1", "data.procedural_ratio=0.0"]
    status = benchmark.main(["--options", "contiguous", "channels_last", "--steps", "3", "--out", str(tmp_path), *toy])
    assert status == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["option"] for r in rows] == ["contiguous", "channels_last"]
    assert all(float(r["images_per_s"]) > 0 for r in rows) and float(rows[0]["vs_first"]) == 1.0
    assert "| channels_last |" in (tmp_path / "results.md").read_text()


def _loss_after_one_step(**optimizer_options: object) -> float:
    """The loss of a second batch after one AdamW step with ``optimizer_options`` (foreach, fused)."""
    torch.manual_seed(0)
    optimizer = functools.partial(torch.optim.AdamW, lr=1e-3, **optimizer_options)
    module = RestorationModule(
        LAformer.from_preset("tiny", width=8), optimizer=optimizer, memory_format="channels_last"
    )
    module.setup("fit")
    generator = torch.Generator().manual_seed(1)
    batches = [
        {
            "input": torch.rand(2, 3, 32, 32, generator=generator),
            "target": torch.rand(2, 3, 32, 32, generator=generator),
        }
        for _ in range(2)
    ]
    opt = module.optimizer_factory(module.parameters())
    module.training_step(batches[0], 0).backward()
    opt.step()
    with torch.no_grad():
        return float(module.training_step(batches[1], 1))


@pytest.mark.parametrize("option", [{"foreach": True}, {"fused": True}])
def test_foreach_and_fused_adamw_change_nothing_but_speed(option: dict[str, bool]) -> None:
    reference = _loss_after_one_step(foreach=False)
    assert abs(_loss_after_one_step(**option) - reference) < 1e-4


def test_throughput_quick_mode_measures_the_optimiser_options(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("throughput_benchmark", REPO / "experiments/throughput/benchmark.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert "channels_last+fused" in benchmark.QUICK_OPTIONS
    assert all(option in benchmark.OPTIONS for option in benchmark.QUICK_OPTIONS)


def test_optimizer_step_benchmark_alternates_twins_that_stay_equal(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("optimizer_step", REPO / "experiments/throughput/optimizer_step.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "plain" in out and "fused" in out and "(median), x" in out
    plain, fused = script.twin_optimizers("tiny")
    start = plain.param_groups[0]["params"][0].detach().clone()
    for _ in range(3):
        plain.step()
        fused.step()
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    assert not torch.equal(plain.param_groups[0]["params"][0], start)  # the steps moved the weights
    assert script.largest_difference(plain, fused) < 1e-4  # the same update to float rounding
