"""Training on the CPU keeps freed memory in the process while fitting, and hands glibc its defaults back after:
checked by page faults in a fresh process, with a real Trainer."""

from __future__ import annotations

import sys

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from laformer.inference import cpu_heap
from laformer.models import LAformer
from laformer.training import RestorationModule
from laformer.training.callbacks import CpuHeapReuse
from tests.inference.test_cpu_heap import ACTIVATION, minor_faults_of_a_second_pass
from tests.training.quiet import quiet_cpu_trainer, random_pairs


class _FaultProbe(L.Callback):
    """At the second training step: whether reuse is on, and the page faults of a pass of large maps."""

    def __init__(self, heap: CpuHeapReuse) -> None:
        self.heap, self.enabled, self.kept = heap, None, -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 1:
            self.enabled, self.kept = self.heap.enabled, minor_faults_of_a_second_pass()


def faults_during_and_after_fit() -> tuple[bool | None, int, int, bool | None]:
    torch.set_num_threads(1)  # one thread, one malloc arena: the counts are the passes' own
    torch.manual_seed(0)
    heap = CpuHeapReuse()
    probe = _FaultProbe(heap)
    trainer = quiet_cpu_trainer(max_steps=2, callbacks=[heap, probe])
    trainer.fit(RestorationModule(LAformer.from_preset("tiny", width=8)), DataLoader(random_pairs(4), batch_size=2))
    return probe.enabled, probe.kept, minor_faults_of_a_second_pass(), heap.enabled


@pytest.mark.skipif(cpu_heap._glibc() is None or not sys.platform.startswith("linux"), reason="glibc, page faults")
def test_freed_memory_is_kept_while_fitting_and_handed_back_after() -> None:
    import resource

    from laformer.benchmarks.worker import run_isolated

    pages = 4 * ACTIVATION[0] * ACTIVATION[1] * ACTIVATION[2] // resource.getpagesize()
    enabled, kept, after, state_after = run_isolated(faults_during_and_after_fit, timeout=300)
    assert enabled is True
    assert kept <= 3 * pages, (kept, pages)  # as tests/inference/test_cpu_heap.py: reuse faults 0-1 maps' worth
    assert after >= 8 * pages, (after, pages)  # glibc's defaults are back once fitting ends
    assert state_after is None


def test_off_the_cpu_or_where_it_does_not_fit_glibc_keeps_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first step whose peak, with the margin, exceeds the budget leaves the default policy (the 4K rule)."""
    monkeypatch.setenv(cpu_heap.BUDGET_ENV, "0.001")
    heap = CpuHeapReuse()
    trainer = quiet_cpu_trainer(max_steps=1, callbacks=[heap])
    seen = []

    class _See(L.Callback):
        def on_train_batch_end(self, *args) -> None:
            seen.append(heap.enabled)

    trainer.callbacks.append(_See())
    trainer.fit(RestorationModule(LAformer.from_preset("tiny", width=8)), DataLoader(random_pairs(2), batch_size=2))
    assert seen == [False]
