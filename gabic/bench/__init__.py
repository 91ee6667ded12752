"""Benchmarks: timings, FLOPs and memory of both models (paper Table 1), each attention block,
the graph core's two paths, the app's analysis and the training step.

``run(...)`` measures and returns the report (a JSON-able dict); ``python -m gabic bench``
(:mod:`gabic.bench.cli`) prints it and writes it to a file. One module per concern:
:mod:`~gabic.bench.timing` (medians of wall and CPU time), :mod:`~gabic.bench.inputs`
(settings, models, images, the machine), one module per group of parts
(:mod:`~gabic.bench.model_level`, :mod:`~gabic.bench.memory`, :mod:`~gabic.bench.blocks`,
:mod:`~gabic.bench.core`, :mod:`~gabic.bench.app_latency`, :mod:`~gabic.bench.train_step`),
:mod:`~gabic.bench.report` (table, ratios, comparison) and :mod:`~gabic.bench.runner`.
A new part: a function ``(…, device, settings) -> dict`` in its own module, its name in
:data:`PARTS`, one line in :func:`run`.
"""

from .inputs import Settings
from .report import compare_reports, print_report, report_lines, summarise
from .runner import DEFAULT_PARTS, PARTS, run

__all__ = ["DEFAULT_PARTS", "PARTS", "Settings", "compare_reports", "print_report", "report_lines", "run",
           "summarise"]  # fmt: skip
