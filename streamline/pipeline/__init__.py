"""The end-to-end pipeline: running emotion estimates from a file, devices or any Observables.

* :class:`Pipeline` composes sources, face analysis, voice features, speech
  recognition with text features, the synchronizer and the fusion model, with
  defaults (2 s windows every 0.5 s, face at 15 fps, all modalities) that can be
  changed stage by stage (:class:`PipelineSettings`, :class:`Stages`).
* Results: an Observable, a blocking iterator, an async iterator, or callbacks.
* :mod:`~streamline.pipeline.sinks`: JSON lines / CSV / WebVTT writers;
  :mod:`~streamline.pipeline.report`: the self-contained HTML report.
* ``streamline analyze`` and ``streamline webcam`` (``_cli``).

Importing this package is cheap; models load when a pipeline starts. See docs/pipeline.md.
"""

from __future__ import annotations

from .metrics import LatencyRecorder, format_metrics
from .pipeline import Pipeline, PipelineInfo, PipelineModels
from .report import ReportBuilder
from .settings import MODALITY_NAMES, PipelineSettings, Stages, parse_modalities
from .sinks import CsvEstimateWriter, JsonlWriter, VttWriter, estimate_record, open_estimate_writer, word_record

__all__ = [
    "MODALITY_NAMES",
    "CsvEstimateWriter",
    "JsonlWriter",
    "LatencyRecorder",
    "Pipeline",
    "PipelineInfo",
    "PipelineModels",
    "PipelineSettings",
    "ReportBuilder",
    "Stages",
    "VttWriter",
    "estimate_record",
    "format_metrics",
    "open_estimate_writer",
    "parse_modalities",
    "word_record",
]
