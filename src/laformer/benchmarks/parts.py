"""A study in parts under a fixed time budget: every case becomes a row, whatever happens to it.

On a machine lent for minutes a study cannot afford to stop at the first failure or to overrun: each part runs
under its own budget (:func:`~laformer.benchmarks.machine.time_limit`), a case that raises is recorded as ``error``
with its message, one that cannot run as ``skipped`` with the reason, and the case in flight when the budget runs
out as ``timeout``; then the next part starts. A row is any object with ``status`` and ``note`` attributes (a
study's dataclass with its own columns).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from laformer.benchmarks.machine import BudgetSpent, time_limit
from laformer.benchmarks.measure import describe_error
from laformer.benchmarks.memory import free_memory


class Case(Protocol):
    status: str
    note: str


C = TypeVar("C", bound=Case)


class BudgetedPart:
    """Mixin for a part's context: ``deadline`` (a ``time.monotonic()`` value) and ``in_flight`` (the case being
    measured, for the timeout row) are the attributes it expects."""

    deadline: float
    in_flight: Any = None

    def left(self) -> float:
        """Seconds left of the part's budget."""
        return self.deadline - time.monotonic()

    def attempt(
        self, row: C, measure: Callable[..., None], *args: object, collect: bool = False, skip: str | None = None
    ) -> C:
        """Fill ``row`` by ``measure(row, *args)``; an exception makes it an ``error`` row (a part timeout passes).

        ``skip``: why the case cannot run here (a precision this device lacks): the row is ``skipped`` with it.
        ``collect``: run the garbage collector afterwards, so what the case left in reference cycles (a Trainer and
        its module) is freed before the next case's peak memory is measured.
        """
        if skip:
            row.status, row.note = "skipped", skip
            return row
        self.in_flight = row
        try:
            measure(row, *args)
        except Exception as exc:
            row.status, row.note = "error", describe_error(exc)
        finally:
            free_memory(collect)
        self.in_flight = None  # still set when a BudgetSpent passes, so the timeout row names this case
        return row


def run_budgeted(
    cases: Callable[[], Iterator[C]],
    budget: float,
    record: Callable[[C], object],
    context: BudgetedPart,
    part_row: Callable[[], C],
) -> None:
    """``record`` every row ``cases()`` yields within ``budget`` seconds; an overrun or an error ends the part.

    The overrun is recorded on the case in flight (``context.in_flight``), or on ``part_row()`` (a row standing for
    the whole part) when none was; an exception outside any case is recorded on ``part_row()`` too.
    """
    try:
        with time_limit(budget):
            for row in cases():
                record(row)
    except BudgetSpent as exc:
        row = context.in_flight or part_row()
        row.status, row.note = "timeout", f"{exc} during this case; the cases after it were not run"
        record(row)
    except Exception as exc:
        row = part_row()
        row.status, row.note = "error", describe_error(exc)
        record(row)
