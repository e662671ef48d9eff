"""Fusion: the model that turns each aligned window into an :class:`EmotionEstimate`.

* :class:`EmotionRecognizer` (push/pull) and :func:`estimate_emotions` (reactive
  operator over synchronizer windows) run the shipped default weights offline;
* :func:`stream_specs` / :func:`window_inputs` connect the synchronizer's
  ``face``, ``voice`` and ``text`` streams to the model;
* :func:`train_default_model` (``streamline train``) and :func:`evaluate_manifest`
  (``streamline evaluate``) reproduce and measure the weights;
* dataset loaders for RAVDESS, MEAD, MELD, EMO-DB, CREMA-D, still-face sets and
  generic ``path,label[,transcript]`` manifests.

torch (extra ``fusion``) is imported only when a model is built or loaded.
See docs/fusion.md and docs/model_card.md.
"""

from __future__ import annotations

from .datasets import (
    LabeledItem,
    load_crema_d,
    load_emodb,
    load_faces,
    load_manifest,
    load_mead,
    load_meld,
    load_ravdess,
    normalize_label,
)
from .evaluate import evaluate_items, evaluate_manifest
from .metrics import classification_report
from .operator import estimate_emotions, stream_specs, window_inputs
from .recognizer import (
    DEFAULT_WEIGHTS_DIR,
    EmotionRecognizer,
    RecognizerSettings,
    RunningFilter,
    WindowInputs,
    load_model,
)
from .train import TrainSettings, train_default_model
from .types import CLASSES, MODALITIES, NUM_CLASSES, EmotionEstimate

__all__ = [
    "CLASSES",
    "DEFAULT_WEIGHTS_DIR",
    "MODALITIES",
    "NUM_CLASSES",
    "EmotionEstimate",
    "EmotionRecognizer",
    "LabeledItem",
    "RecognizerSettings",
    "RunningFilter",
    "TrainSettings",
    "WindowInputs",
    "classification_report",
    "estimate_emotions",
    "evaluate_items",
    "evaluate_manifest",
    "load_crema_d",
    "load_emodb",
    "load_faces",
    "load_manifest",
    "load_mead",
    "load_meld",
    "load_model",
    "load_ravdess",
    "normalize_label",
    "stream_specs",
    "train_default_model",
    "window_inputs",
]
