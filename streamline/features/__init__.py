"""Voice and text features, as timestamped items for the synchronizer.

* :mod:`streamline.features.voice`: every 10 ms, log energy, F0 with voicing
  (YIN), 40 log-mel bands and 13 MFCCs (numba kernels; numpy only).
* :mod:`streamline.features.voice_embedding`: every 0.5 s hop, the mean and
  standard deviation of Whisper tiny.en encoder states (extra ``asr``): the
  fusion model's voice input.
* :mod:`streamline.features.text`: a 1536-d sentence embedding (all-mpnet-base-v2,
  mean token states of layers 6 and 8) and VADER valence of each utterance's committed words (extra ``asr``; loaded
  on first use).

See docs/features.md for the exact definitions.
"""

from __future__ import annotations

from .text import (
    TEXT_EMBEDDING_DIM,
    TEXT_LAYERS,
    TextEncoder,
    TextEncoderStats,
    TextFeatures,
    TextSettings,
    default_text_encoder,
    embed_texts,
    text_features,
    text_model_dir,
    text_valence,
)
from .voice import (
    N_MELS,
    N_MFCC,
    VOICE_FEATURE_DIM,
    VOICE_FEATURE_NAMES,
    VoiceFeatureExtractor,
    VoiceFrame,
    VoiceSettings,
    VoiceStats,
    stack_voice_frames,
    voice_features,
    voice_features_array,
    warmup_voice_kernels,
)
from .voice_embedding import (
    VOICE_EMBEDDING_DIM,
    VoiceEmbedder,
    VoiceEmbedding,
    VoiceEmbeddingSettings,
    VoiceEmbeddingStats,
    voice_embeddings,
    voice_embeddings_array,
)

__all__ = [
    "N_MELS",
    "N_MFCC",
    "TEXT_EMBEDDING_DIM",
    "TEXT_LAYERS",
    "VOICE_EMBEDDING_DIM",
    "VOICE_FEATURE_DIM",
    "VOICE_FEATURE_NAMES",
    "TextEncoder",
    "TextEncoderStats",
    "TextFeatures",
    "TextSettings",
    "VoiceEmbedder",
    "VoiceEmbedding",
    "VoiceEmbeddingSettings",
    "VoiceEmbeddingStats",
    "VoiceFeatureExtractor",
    "VoiceFrame",
    "VoiceSettings",
    "VoiceStats",
    "default_text_encoder",
    "embed_texts",
    "stack_voice_frames",
    "text_features",
    "text_model_dir",
    "text_valence",
    "voice_embeddings",
    "voice_embeddings_array",
    "voice_features",
    "voice_features_array",
    "warmup_voice_kernels",
]
