"""Refusing runs that are too big, before they allocate anything.

Every experiment's parameters have allowed ranges, yet some combinations inside them would
need tens of GiB or run for many minutes (``openloop --seconds 1e7``; ``herd --clients
10000000 --max-attempts 1000``). Each experiment estimates, before it allocates, the memory
its largest point needs and the work of the whole call, and :func:`require` refuses with a
:class:`ValueError` that names the limit and this machine's memory:

* **memory**: at most :data:`MEMORY_SHARE` of the memory available now (``MemAvailable`` in
  ``/proc/meminfo``; elsewhere ``os.sysconf``);
* **work**: a fixed limit per experiment, in that experiment's unit of work, set to about a
  minute on the 2-core machine the benchmarks ran on (the lab's default runs take seconds).

The estimates are deliberately generous (a little above the arrays really allocated).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["GIB", "MEMORY_SHARE", "machine_memory", "require"]

GIB = 1024**3
MEMORY_SHARE = 0.5
"""The share of the available memory one run may use."""


def machine_memory() -> tuple[int, int]:
    """``(available, total)`` bytes of memory on this machine.

    Read from ``/proc/meminfo`` (Linux: ``MemAvailable``, ``MemTotal``); elsewhere from
    ``os.sysconf`` (available = free physical pages). 0 for what cannot be read.
    """
    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                fields[key] = int(parts[0]) * 1024  # the file counts kB
        if "MemAvailable" in fields and "MemTotal" in fields:
            return fields["MemAvailable"], fields["MemTotal"]
    except OSError:
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page
    except (AttributeError, OSError, ValueError):
        return 0, 0


def _gib(nbytes: float) -> str:
    return f"{nbytes / GIB:,.1f} GiB"


def require(experiment: str, what: str, *, memory: float, work: float, work_limit: float,
            unit: str) -> None:
    """Refuse the run (ValueError) if it needs too much memory or too much work.

    Args:
        experiment: the experiment's name, for the message.
        what: the sizes that matter, in words (``"100,000 clients x 1,000 attempts"``).
        memory: the estimated peak memory in bytes.
        work: the estimated work, in ``unit``.
        work_limit: the most work allowed, in ``unit`` (about a minute).
        unit: what ``work`` counts (``"client-attempts"``).
    """
    available, total = machine_memory()
    if available > 0:
        limit = MEMORY_SHARE * available
        if memory > limit:
            raise ValueError(
                f"{experiment}: {what} would need about {_gib(memory)} of memory; the limit is "
                f"{MEMORY_SHARE:.0%} of the memory this machine has available, "
                f"{_gib(limit)} (available {_gib(available)} of {_gib(total)})")
    if work > work_limit:
        machine = (f"; this machine has {_gib(available)} of {_gib(total)} available, but time "
                   "is the limit here" if available > 0 else "")
        raise ValueError(
            f"{experiment}: {what} is about {work:,.0f} {unit}, which would take minutes; "
            f"the limit is {work_limit:,.0f} {unit} (about a minute){machine}")
