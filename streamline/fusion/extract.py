"""From media files to the fusion model's input features, through the inference operators.

Training caches and ``streamline evaluate`` both call these functions, and they
call only the operators the live pipeline runs, so training and inference see
the same numbers:

* voice: :func:`streamline.sources.read_audio` (16 kHz mono) then a
  :class:`streamline.features.VoiceEmbedder` (769 values every 0.5 s hop:
  pooled Whisper tiny.en encoder states, see :mod:`streamline.features.voice_embedding`);
  a hop counts as voice only when it holds speech (:func:`voice_has_speech`);
* face: :func:`streamline.sources.open_media` (RGB frames) then
  :class:`streamline.face.FaceAnalyzer` (blendshapes, head pose, facex expression),
  packed by :func:`face_vector`;
* text: :func:`streamline.features.embed_texts` (all-mpnet-base-v2 layers 6 and 8, 1536-d) and
  :func:`streamline.features.text_valence` (VADER), packed by :func:`text_vector`.

Face feature vector (:data:`FACE_FEATURE_DIM` = 63 float32 values)::

    0-51   blendshape scores in streamline.face.BLENDSHAPE_NAMES order, [0, 1]
    52-54  head pose yaw, pitch, roll in degrees
    55-61  facex expression probabilities in CLASSES order (0 when not computed)
    62     1.0 when the expression was computed for this frame's face, else 0.0

A frame without a face has no vector: it is a masked (invalid) grid point.

Text feature vector (:data:`TEXT_FEATURE_DIM` = 1537): the 1536-d embedding,
then the VADER valence in [-1, 1].
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import MediaError
from ..features.text import TEXT_EMBEDDING_DIM
from ..features.voice_embedding import VOICE_EMBEDDING_DIM
from ..types import VideoFrame

__all__ = [
    "FACE_FEATURE_DIM",
    "VOICE_FEATURE_DIM",
    "TEXT_FEATURE_DIM",
    "VOICE_MIN_SPEECH_RATIO",
    "voice_has_speech",
    "FaceTrack",
    "face_vector",
    "text_vector",
    "audio_file_features",
    "video_file_faces",
    "image_file_rgb",
    "image_face_features",
    "texts_features",
]

log = logging.getLogger(__name__)

#: Values per face feature frame (see the module docstring).
FACE_FEATURE_DIM = 63
#: Values per voice item (streamline.features.VOICE_EMBEDDING_DIM: mean, std, weight).
VOICE_FEATURE_DIM = VOICE_EMBEDDING_DIM
#: Values of the text feature vector (streamline.features.TEXT_EMBEDDING_DIM + valence).
TEXT_FEATURE_DIM = TEXT_EMBEDDING_DIM + 1
#: A voice hop holds speech when at least this share of its 32 ms VAD windows is speech
#: (``VoiceEmbedding.speech_ratio``): 0.25 of a 0.5 s hop is 125 ms, about one syllable.
#: Hops below it are masked out of the voice modality, in training and inference alike.
VOICE_MIN_SPEECH_RATIO = 0.25


def voice_has_speech(speech_ratio: Any) -> np.ndarray:
    """Where voice hops hold speech: ``speech_ratio >= VOICE_MIN_SPEECH_RATIO``, a bool
    array of ``speech_ratio``'s shape (0-d for one value)."""
    return np.asarray(speech_ratio) >= VOICE_MIN_SPEECH_RATIO


def face_vector(observation: Any) -> np.ndarray | None:
    """Pack one :class:`~streamline.face.FaceObservation` as a (63,) float32 vector, or None without a face."""
    if not observation.present:
        return None
    v = np.zeros(FACE_FEATURE_DIM, dtype=np.float32)
    bs = np.asarray(observation.blendshapes, dtype=np.float32)
    v[:52] = np.nan_to_num(bs, nan=0.0)
    pose = np.asarray(observation.head_pose_deg, dtype=np.float32)
    v[52:55] = np.nan_to_num(pose, nan=0.0)
    if observation.expression is not None:
        v[55:62] = np.asarray(observation.expression, dtype=np.float32)
        v[62] = 1.0
    return v


def text_vector(embedding: np.ndarray, valence: float) -> np.ndarray:
    """Pack a (1536,) embedding and a valence as the (1537,) float32 text feature vector."""
    v = np.empty(TEXT_FEATURE_DIM, dtype=np.float32)
    v[:TEXT_EMBEDDING_DIM] = embedding
    v[TEXT_EMBEDDING_DIM] = valence
    return v


def audio_file_features(path: str | os.PathLike[str], *,
                        embedder: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode a file's audio at 16 kHz mono and compute its voice items.

    Args:
        path: a media file with an audio stream.
        embedder: a :class:`~streamline.features.VoiceEmbedder` to reuse (None: load one for this call).

    Returns:
        ``(samples (n,) float32, times_ns (m,) int64, vectors (m, 769) float32,
        speech_ratios (m,) float32)``; times on the file's timeline (``read_audio``'s
        ``pts_ns`` is the first sample's time); see :attr:`VoiceEmbedding.speech_ratio
        <streamline.features.VoiceEmbedding.speech_ratio>`.

    Raises:
        MediaNotFoundError, CorruptMediaError, NoMediaStreamsError, MediaError: see
        :func:`streamline.sources.read_audio`.
    """
    from ..features.voice_embedding import voice_embeddings_array
    from ..sources import read_audio

    chunk = read_audio(path, sample_rate_hz=16000, fill_gaps=True)
    samples = np.asarray(chunk.samples, dtype=np.float32)
    times, feats, speech = voice_embeddings_array(samples, start_ns=int(chunk.pts_ns), embedder=embedder)
    return samples, times, feats, speech


@dataclass(slots=True)
class FaceTrack:
    """Face feature frames of a video.

    Attributes:
        times_ns: (k,) int64 times of the analysed frames.
        feats: (k, 63) float32 face vectors (zeros where no face).
        present: (k,) bool, True where a face was found.
        stats: the analyzer's counters.
    """

    times_ns: np.ndarray
    feats: np.ndarray
    present: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


def video_file_faces(
    path: str | os.PathLike[str],
    *,
    fps: float = 15.0,
    expression: bool = True,
    timeout_s: float = 600.0,
) -> FaceTrack:
    """Run the face path (``open_media`` video -> :class:`~streamline.face.FaceAnalyzer`) over a file.

    Args:
        path: a video file (or an image file, which gives one frame).
        fps: analysed frames per second (the analyzer's rate gate, by timestamp).
        expression: also run the facex expression model (as the pipeline does by default).
        timeout_s: give up after this long.

    Raises:
        MediaNotFoundError, CorruptMediaError, NoMediaStreamsError: see :func:`streamline.sources.open_media`.
        MediaError: decoding failed or took longer than ``timeout_s``.
    """
    from ..face import FaceAnalyzer, FaceSettings
    from ..sources import open_media

    times: list[int] = []
    vecs: list[np.ndarray] = []
    present: list[bool] = []
    failure: list[BaseException] = []
    done = threading.Event()
    with FaceAnalyzer(FaceSettings(fps=fps, expression=expression)) as analyzer:

        def on_frame(frame: VideoFrame) -> None:
            if failure:
                return
            try:
                obs = analyzer.analyze(frame)
            except Exception as exc:  # noqa: BLE001 - reported after decoding stops
                failure.append(exc)
                return
            if obs is None:
                return
            v = face_vector(obs)
            times.append(int(obs.pts_ns))
            present.append(v is not None)
            vecs.append(v if v is not None else np.zeros(FACE_FEATURE_DIM, dtype=np.float32))

        def on_error(exc: Exception) -> None:
            failure.append(exc)
            done.set()

        with open_media(path, audio=False) as source:
            assert source.video is not None
            source.video.subscribe(on_next=on_frame, on_error=on_error, on_completed=done.set)
            source.start()
            if not done.wait(timeout_s):
                raise MediaError(f"{path}: face analysis took longer than {timeout_s} s")
        stats = analyzer.stats.as_dict()
    if failure:
        raise failure[0]
    if not times:
        return FaceTrack(np.zeros(0, np.int64), np.zeros((0, FACE_FEATURE_DIM), np.float32), np.zeros(0, bool), stats)
    return FaceTrack(np.asarray(times, np.int64), np.stack(vecs), np.asarray(present, bool), stats)


def image_file_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a still image file with the media source: (H, W, 3) uint8 RGB.

    Raises:
        MediaNotFoundError, CorruptMediaError: see :func:`streamline.sources.open_media`.
        MediaError: the file holds no frame.
    """
    from ..sources import open_media

    frames: list[VideoFrame] = []
    failure: list[BaseException] = []
    done = threading.Event()
    with open_media(path, audio=False) as source:
        assert source.video is not None
        source.video.subscribe(on_next=frames.append, on_error=lambda e: (failure.append(e), done.set()), on_completed=done.set)
        source.start()
        if not done.wait(60.0):
            raise MediaError(f"{path}: decoding the image took longer than 60 s")
    if failure:
        raise failure[0]
    if not frames:
        raise MediaError(f"{path}: no image frame decoded")
    return frames[0].image


def image_face_features(analyzer: Any, images: Sequence[np.ndarray], *, start_ns: int = 0, step_ns: int = 1_000_000_000) -> list[np.ndarray | None]:
    """Face vectors of still images, one analyser call each (``process``, no rate gate).

    The images are given to the analyser as frames ``step_ns`` apart from
    ``start_ns`` (MediaPipe needs increasing times); the analyser's state
    (tracking) carries across them as it does across video frames.

    Returns:
        One (63,) vector per image, or None where no face was found.
    """
    out: list[np.ndarray | None] = []
    for i, img in enumerate(images):
        frame = VideoFrame(pts_ns=start_ns + i * step_ns, image=np.ascontiguousarray(img), source_id="image")
        out.append(face_vector(analyzer.process(frame)))
    return out


def texts_features(texts: Sequence[str], *, encoder: Any = None) -> np.ndarray:
    """Text feature vectors of sentences: (n, 1537) float32 (embedding + VADER valence).

    Args:
        texts: the sentences.
        encoder: a :class:`~streamline.features.TextEncoder` to use (None: the process-wide default).
    """
    from ..features import embed_texts, text_valence

    texts = list(texts)
    if not texts:
        return np.zeros((0, TEXT_FEATURE_DIM), np.float32)
    emb = embed_texts(texts, encoder=encoder)
    out = np.empty((len(texts), TEXT_FEATURE_DIM), dtype=np.float32)
    out[:, :TEXT_EMBEDDING_DIM] = emb
    out[:, TEXT_EMBEDDING_DIM] = [text_valence(t) for t in texts]
    return out

