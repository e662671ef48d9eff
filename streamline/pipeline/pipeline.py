"""The end-to-end pipeline: sources -> perception -> synchronizer -> fusion -> consumers.

::

    video ─► face (own thread) ──────────────────────────► "face" ─┐
    audio ─┬► voice embeddings (own thread) ─────────────► "voice" ├─► synchronize ─► fusion (own thread) ─► estimates
           └► speech recognition + text features (own thread) ► "text" ┘      windows 2 s / hop 0.5 s          │
                  └─► words, speech segments ─────────────────────────────────────────────────────────────┤
                                                                                 delivery thread ◄──────────┘
                                                                      Observable / iterator / async iterator / callbacks

Every arrow between threads is a bounded :class:`~streamline.flow.Handoff`. Files:
``BLOCK`` everywhere (nothing is lost; the file is read as fast as the slowest
stage allows) and no lateness budget, so the estimates are a function of the file
alone. Live (devices, or a file replayed with ``realtime=True``): video keeps the
latest frame (drops counted), audio is never dropped, and each synchronizer stream
has a lateness budget so a window is never held back long by one late stream.

Results are delivered on one thread of the pipeline's own
(``streamline-pipeline-deliver``), never while an internal lock is held, so a
callback may take its time or call back into the pipeline (except :meth:`Pipeline.close`
from within a callback, which is allowed but cannot wait for that callback).
See docs/pipeline.md.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.subject import Subject

from ..errors import ClosedError, ConfigError, NoMediaStreamsError
from ..flow import BoundedQueue, Handoff, OverflowPolicy
from ..timeline import NS_PER_S, Clock, monotonic_clock
from ..types import SpeechSegment, Word
from ._iterators import AsyncEventIterator, EventIterator, SafeObserver
from ._stages import FaceStage, SpeechStage, TextStage, VoiceStage
from .metrics import LatencyRecorder, ReadyTracker
from .settings import MODALITY_NAMES, PipelineSettings, Stages

__all__ = ["Pipeline", "PipelineModels", "PipelineInfo"]

log = logging.getLogger(__name__)

_DONE = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class PipelineModels:
    """The loaded models a pipeline uses; share one set between pipelines to load once.

    Any model left as None is loaded by the pipeline when it starts and closed when it
    closes. Models passed in are never closed by a pipeline: close them (or this
    object, a context manager) yourself.

    Args:
        whisper: a :class:`~streamline.speech.WhisperRecognizer` (thread-safe, shareable).
        voice_encoder: a :class:`~streamline.speech.WhisperRecognizer` for tiny.en that
            the voice embeddings run. Loaded by the pipeline, it is the same object as
            ``whisper``, with two CTranslate2 workers sharing the weights, so that an
            embedding never waits behind a speech decode.
        text_encoder: a :class:`~streamline.features.TextEncoder`.
        emotion: an :class:`~streamline.fusion.EmotionRecognizer`.
    """

    def __init__(self, *, whisper: Any = None, voice_encoder: Any = None, text_encoder: Any = None,
                 emotion: Any = None) -> None:
        self.whisper = whisper
        self.voice_encoder = voice_encoder
        self.text_encoder = text_encoder
        self.emotion = emotion

    @classmethod
    def load(cls, settings: PipelineSettings | None = None, *, modalities: Iterable[str] | None = None) -> "PipelineModels":
        """Load the models the given settings need (all by default).

        Raises:
            ModelNotFoundError, MissingExtraError: a model or an extra is not installed.
        """
        settings = settings or PipelineSettings()
        mods = tuple(modalities) if modalities is not None else settings.modalities
        models = cls()
        try:
            models._fill(settings, mods)
        except BaseException:
            models.close()
            raise
        return models

    def _fill(self, settings: PipelineSettings, modalities: tuple[str, ...],
              loaded: list[str] | None = None) -> list[str]:
        """Load what is missing; the names loaded here (owned by the caller) are appended to
        ``loaded`` as they load (so a failure half-way still tells what to close)."""
        loaded = [] if loaded is None else loaded
        from ..speech.whisper import WhisperRecognizer

        asr_w, voice_w = settings.asr.whisper, settings.voice.whisper
        if ("text" in modalities and "voice" in modalities and self.whisper is None and self.voice_encoder is None
                and _one_model_serves_both(asr_w, voice_w)):
            # one copy of tiny.en with two CTranslate2 workers: decodes and voice embeddings run side by side
            self.whisper = self.voice_encoder = WhisperRecognizer(dataclasses.replace(asr_w, workers=max(2, asr_w.workers)))
            loaded += ["whisper", "voice_encoder"]
        if "text" in modalities and self.whisper is None:
            self.whisper = WhisperRecognizer(asr_w)
            loaded.append("whisper")
        if "voice" in modalities and self.voice_encoder is None:
            self.voice_encoder = WhisperRecognizer(voice_w)
            loaded.append("voice_encoder")
        if "text" in modalities and self.text_encoder is None:
            from ..features.text import TextEncoder

            self.text_encoder = TextEncoder(settings.text)
            loaded.append("text_encoder")
            # the first call sets up torch and sentence-transformers' helpers (a tqdm monitor
            # thread among them): do it now rather than on the first word of a live session
            self.text_encoder.embed(["streamline"])
        if self.emotion is None:
            from ..fusion.recognizer import EmotionRecognizer

            self.emotion = EmotionRecognizer(settings.fusion)
            loaded.append("emotion")
        return loaded

    def close(self, names: Iterable[str] | None = None) -> None:
        """Close the models (or only those named); idempotent."""
        for name in list(names) if names is not None else ["whisper", "voice_encoder", "text_encoder", "emotion"]:
            model = getattr(self, name)
            if model is not None:
                try:
                    model.close()
                except Exception:  # noqa: BLE001 - closing must not raise
                    log.debug("closing %s failed", name, exc_info=True)
                setattr(self, name, None)

    def __enter__(self) -> "PipelineModels":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class PipelineInfo:
    """What a pipeline runs on.

    Attributes:
        label: the input's name (a path, ``"camera+microphone"``, ``"observables"``).
        duration_s: the input's duration in seconds (files), or None.
        live: True for devices and real-time replay (lateness budgets, keep-latest video).
        has_video: a video stream is present.
        has_audio: an audio stream is present.
        modalities: the modalities that run (requested and possible).
        absent: modality -> why it does not run (e.g. ``"no audio stream"``).
    """

    label: str
    duration_s: float | None
    live: bool
    has_video: bool
    has_audio: bool
    modalities: tuple[str, ...]
    absent: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One human-readable line per absent modality."""
        return [f"{m} modality absent: {why}" for m, why in self.absent.items()]


class _AnchoredClock:
    """Session time of a file replayed in real time: anchored at the first item delivered."""

    def __init__(self, base: Clock = monotonic_clock) -> None:
        self._base = base
        self._anchor: int | None = None
        self._lock = threading.Lock()

    def anchor(self, pts_ns: int) -> None:
        if self._anchor is None:
            with self._lock:
                if self._anchor is None:
                    self._anchor = self._base() - pts_ns

    def __call__(self) -> int:
        anchor = self._anchor
        return 0 if anchor is None else self._base() - anchor


class Pipeline:
    """Emotion estimates from audio, video and their transcript, as they happen.

    Build one with :meth:`from_file`, :meth:`from_devices`, :meth:`from_synthetic`,
    or directly from Observables (``Pipeline(video=..., audio=...)``). Consume the
    results in any (or several) of four ways, set up before or after :meth:`start`:

    * ``pipeline.estimates``: a hot ``Observable[EmotionEstimate]`` (also ``.words``,
      ``.segments``, ``.faces`` and ``.events`` for everything);
    * ``for est in pipeline:`` (a blocking iterator; starts the pipeline);
    * ``async for est in pipeline:`` (an async iterator; starts the pipeline);
    * ``pipeline.subscribe(on_estimate=..., on_word=...)`` (callbacks).

    Everything is delivered on the pipeline's delivery thread, in the order the
    stages produced it, never while an internal lock is held. Use it as a context
    manager or call :meth:`close`: it stops the sources and joins every thread of the
    pipeline, closes the face landmarker, and closes the models it loaded.

    Args:
        video: ``Observable[VideoFrame]`` (RGB frames on the session timeline), or None.
        audio: ``Observable[AudioChunk]`` (16 kHz mono float32), or None.
        settings: :class:`PipelineSettings` (defaults when None).
        live: the inputs are live (devices, real-time replay): lateness budgets on the
            synchronizer, keep-latest hand-off for video.
        clock: the session clock (int ns) for lateness budgets and latency metrics
            (live only; default: :func:`streamline.sources.default_session_clock`).
        stages: user replacements of whole stages (:class:`Stages`).
        models: loaded models to share (:class:`PipelineModels`); the missing ones are
            loaded at :meth:`start` and closed at :meth:`close`.
        sources: objects with ``close()`` (e.g. MediaSources) the pipeline owns and closes.
        label: the input's name for messages and the report.
        duration_s: the input's duration if known (progress, real-time factor).

    Raises:
        ConfigError: no input for any requested modality, or bad settings.
    """

    def __init__(
        self,
        *,
        video: Observable[Any] | None = None,
        audio: Observable[Any] | None = None,
        settings: PipelineSettings | None = None,
        live: bool = False,
        clock: Clock | None = None,
        stages: Stages | None = None,
        models: PipelineModels | None = None,
        sources: Iterable[Any] = (),
        label: str = "observables",
        duration_s: float | None = None,
        _anchored: bool = False,
        _owned_models: Iterable[str] = (),
    ) -> None:
        self.settings = settings if settings is not None else PipelineSettings()
        if not isinstance(self.settings, PipelineSettings):
            raise ConfigError(f"settings must be a PipelineSettings, got {type(self.settings).__name__}")
        self.stages = stages if stages is not None else Stages()
        self._owned_sources = list(sources)
        requested = self.settings.modalities
        absent: dict[str, str] = {}
        running: list[str] = []
        for m in requested:
            need_video = m == "face"
            if need_video and video is None:
                absent[m] = "the input has no video stream"
            elif not need_video and audio is None:
                absent[m] = "the input has no audio stream"
            else:
                running.append(m)
        for m in MODALITY_NAMES:
            if m not in requested:
                absent.setdefault(m, "not selected")
        if not running:
            self._close_sources()
            raise NoMediaStreamsError(
                f"{label}: nothing to analyse: " + "; ".join(f"{m}: {why}" for m, why in absent.items())
            )
        self.info = PipelineInfo(label=label, duration_s=duration_s, live=live, has_video=video is not None,
                                 has_audio=audio is not None, modalities=tuple(running), absent=absent)
        self._video = video if "face" in running else None
        self._audio = audio if ("voice" in running or "text" in running) else None
        self._live = live
        if _anchored:
            self._clock: Clock = _AnchoredClock()
        elif clock is not None:
            self._clock = clock
        elif live:
            from ..sources import default_session_clock

            self._clock = default_session_clock().now_ns
        else:
            self._clock = monotonic_clock
        self._models = models if models is not None else PipelineModels()
        self._owned_models: list[str] = list(_owned_models)
        self._lock = threading.Lock()
        self._state = "new"  # new -> running -> finished -> closed
        self._subject: Subject = Subject()
        self._terminal: tuple[str, Exception | None] | None = None
        self._finished = threading.Event()
        self._graph = CompositeDisposable()
        self._connect_threads: list[threading.Thread] = []
        self._dispatcher: threading.Thread | None = None
        policy = OverflowPolicy.KEEP_LATEST if live else OverflowPolicy.BLOCK
        self._events: BoundedQueue[Any] = BoundedQueue(self.settings.events_queue, policy)
        # metrics
        self._timings = {name: LatencyRecorder() for name in ("face", "voice", "asr", "text", "fusion", "delivery")}
        self._latency_total = LatencyRecorder()
        self._latency_excl = LatencyRecorder()
        self._latency_words = LatencyRecorder()
        self._handoffs: dict[str, Handoff] = {}
        self._face_stage: FaceStage | None = None
        self._speech_stage: SpeechStage | None = None
        self._synced: Any = None
        self._ready: ReadyTracker | None = None
        self._window_emitted: dict[int, tuple[float, int]] = {}
        self._counts = {"estimates": 0, "words": 0, "segments": 0, "faces": 0, "faces_present": 0}
        self._modality_counts = {m: 0 for m in MODALITY_NAMES}
        self._media_ns = 0
        # live: the session time of the first input item (capture starts after the session
        # clock's origin, once the pipeline is wired); media time is counted from there
        self._media_origin_ns: int | None = None
        self._latest_frame: Any = None
        self._t_created = time.perf_counter()
        self._t_started: float | None = None
        self._t_running: float | None = None
        self._t_finished: float | None = None
        # public streams (hot, delivered on the delivery thread)
        from ..face.analyzer import FaceObservation
        from ..fusion.types import EmotionEstimate

        self._estimate_type = EmotionEstimate
        self.events: Observable[Any] = self._subject
        self.estimates: Observable[Any] = self._subject.pipe(ops.filter(lambda x: isinstance(x, EmotionEstimate)))
        self.words: Observable[Word] = self._subject.pipe(ops.filter(lambda x: isinstance(x, Word)))
        self.segments: Observable[SpeechSegment] = self._subject.pipe(ops.filter(lambda x: isinstance(x, SpeechSegment)))
        self.faces: Observable[Any] = self._subject.pipe(ops.filter(lambda x: isinstance(x, FaceObservation)))

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        settings: PipelineSettings | None = None,
        *,
        realtime: bool = False,
        stages: Stages | None = None,
        models: PipelineModels | None = None,
    ) -> "Pipeline":
        """A pipeline over a media file.

        Args:
            path: an audio, video or audio-video file.
            settings: pipeline settings.
            realtime: replay paced like a live device (live policies and budgets);
                default: as fast as possible, every frame and sample processed.
            stages, models: see :class:`Pipeline`.

        Raises:
            MediaNotFoundError, CorruptMediaError, NoMediaStreamsError: the file cannot
                be used (the message names it and says why).
        """
        from ..sources import open_media

        settings = settings if settings is not None else PipelineSettings()
        want_video = "face" in settings.modalities
        want_audio = "voice" in settings.modalities or "text" in settings.modalities
        default_face = stages is None or stages.face is None
        fps = settings.face.fps if (want_video and default_face) else None
        try:
            source = open_media(path, video=want_video, audio=want_audio, sample_rate_hz=16_000,
                                fps=fps if want_video else None, realtime=realtime)
        except NoMediaStreamsError as exc:
            if want_video and want_audio:
                raise
            need = "video (face)" if want_video else "audio (voice, text)"
            raise NoMediaStreamsError(f"{exc}; the selected modalities ({', '.join(settings.modalities)}) "
                                      f"need {need}") from exc
        if fps is not None:
            # frames are already chosen at the source, by timestamp: analyse each one delivered
            settings = dataclasses.replace(settings, face=dataclasses.replace(settings.face, fps=None))
        if realtime:
            settings = dataclasses.replace(settings, face=dataclasses.replace(settings.face, live=True))
        try:
            return cls(video=source.video, audio=source.audio, settings=settings, live=realtime, stages=stages,
                       models=models, sources=[source], label=os.fspath(path), duration_s=source.info.duration_s,
                       _anchored=realtime)
        except BaseException:
            source.close()
            raise

    @classmethod
    def from_devices(
        cls,
        settings: PipelineSettings | None = None,
        *,
        camera: str | None = None,
        microphone: str | None = None,
        camera_options: dict[str, Any] | None = None,
        microphone_options: dict[str, Any] | None = None,
        stages: Stages | None = None,
        models: PipelineModels | None = None,
    ) -> "Pipeline":
        """A live pipeline over a camera and a microphone on one session clock.

        Args:
            settings: pipeline settings (``face`` needs the camera; ``voice``/``text`` the microphone).
            camera: the camera device (platform default when None).
            microphone: the microphone device (platform default when None).
            camera_options: further keyword arguments for :func:`streamline.sources.camera`.
            microphone_options: further keyword arguments for :func:`streamline.sources.microphone`.
            stages, models: see :class:`Pipeline`.

        Raises:
            DeviceError: a device cannot be opened.
        """
        from ..sources import SessionClock
        from ..sources import camera as open_camera
        from ..sources import microphone as open_microphone

        settings = settings if settings is not None else PipelineSettings()
        settings = dataclasses.replace(settings, face=dataclasses.replace(settings.face, live=True))
        # load the models before the devices open, so that session time 0 is when capture starts
        models, owned = _preload(models, settings, settings.modalities)
        session = SessionClock()
        opened: list[Any] = []
        try:
            cam = mic = None
            if "face" in settings.modalities:
                cam = open_camera(camera, session=session, **(camera_options or {}))
                opened.append(cam)
            if "voice" in settings.modalities or "text" in settings.modalities:
                mic = open_microphone(microphone, session=session, **(microphone_options or {}))
                opened.append(mic)
            return cls(video=cam.video if cam else None, audio=mic.audio if mic else None, settings=settings,
                       live=True, clock=session.now_ns, stages=stages, models=models, sources=opened,
                       label="camera+microphone", _owned_models=owned)
        except BaseException:
            for source in opened:
                source.close()
            models.close(owned)
            raise

    @classmethod
    def from_synthetic(
        cls,
        settings: PipelineSettings | None = None,
        *,
        duration_s: float | None = None,
        video: bool = True,
        audio: bool = True,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        stages: Stages | None = None,
        models: PipelineModels | None = None,
    ) -> "Pipeline":
        """A live pipeline over the synthetic devices (a lavfi test pattern and a tone).

        Exercises the live path on a machine without a camera or microphone (demos, tests).
        """
        from ..sources import SessionClock, synthetic

        settings = settings if settings is not None else PipelineSettings()
        settings = dataclasses.replace(settings, face=dataclasses.replace(settings.face, live=True))
        mods = tuple(m for m in settings.modalities if (m == "face" and video) or (m != "face" and audio))
        if not mods:
            raise ConfigError(f"synthetic devices: none of the modalities {settings.modalities} has its device "
                              f"(video={video}, audio={audio})")
        # open only the devices the modalities read: a source waits for every stream it opened
        want_video = "face" in mods
        want_audio = "voice" in mods or "text" in mods
        models, owned = _preload(models, settings, mods)
        session = SessionClock()
        try:
            source = synthetic(video=want_video, audio=want_audio, size=size, fps=fps, duration_s=duration_s,
                               session=session)
        except BaseException:
            models.close(owned)
            raise
        try:
            return cls(video=source.video, audio=source.audio, settings=settings, live=True, clock=session.now_ns,
                       stages=stages, models=models, sources=[source], label="synthetic", duration_s=duration_s,
                       _owned_models=owned)
        except BaseException:
            source.close()
            models.close(owned)
            raise

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Pipeline {self.info.label!r} {'+'.join(self.info.modalities)} {self._state}>"

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end (completion, error or close)."""
        return self._state == "running" and not self._finished.is_set()

    @property
    def face_analyzers(self) -> list[Any]:
        """The face analyzers the default face stage made (one per run); closed when the run ends."""
        return list(self._face_stage.analyzers) if self._face_stage is not None else []

    def latest_frame(self) -> Any:
        """The most recent video frame that entered the pipeline (for display), or None."""
        return self._latest_frame

    def now_ns(self) -> int:
        """The session clock now (int ns): compare with item times for latency (live runs)."""
        return int(self._clock())

    @property
    def models(self) -> PipelineModels:
        """The models in use (after :meth:`start`)."""
        return self._models

    def start(self) -> "Pipeline":
        """Load what is missing, connect the stages and start the sources. Idempotent.

        Consumers set up before this see every result; later ones see what comes after.

        Raises:
            ClosedError: the pipeline was closed.
            ModelNotFoundError, MissingExtraError: a model or an extra is missing.
        """
        with self._lock:
            if self._state == "closed":
                raise ClosedError("Pipeline.start() after close()")
            if self._state != "new":
                return self
            self._state = "running"
        self._t_started = time.perf_counter()
        try:
            self._models._fill(self.settings, self.info.modalities, self._owned_models)
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        s = self.settings
        live = self._live
        file_q = s.file_queue
        emit = self._emit
        clock = self._clock
        anchored = self._clock if isinstance(self._clock, _AnchoredClock) else None

        def handoff(name: str, size: int, policy: OverflowPolicy) -> Handoff:
            h = Handoff(size, policy, name=name)
            self._handoffs[name] = h
            return h

        def note_input(item: Any) -> None:
            if anchored is not None:
                anchored.anchor(item.pts_ns)
            if live and self._media_origin_ns is None:
                with self._lock:
                    if self._media_origin_ns is None:
                        self._media_origin_ns = item.pts_ns

        def note_frame(frame: Any) -> None:
            note_input(frame)
            self._latest_frame = frame

        inputs: dict[str, Observable[Any]] = {}
        connectables: list[Any] = []
        if self._video is not None:
            video = self._video.pipe(ops.do_action(note_frame), ops.publish())
            connectables.append(video)
            face_op = self.stages.face
            if face_op is None:
                self._face_stage = FaceStage(
                    s.face, timing=self._timings["face"],
                    handoff=handoff("face", 1, OverflowPolicy.KEEP_LATEST) if live
                    else handoff("face", file_q, OverflowPolicy.BLOCK))
                face_op = self._face_stage
            inputs["face"] = video.pipe(face_op, ops.do_action(self._on_face))
        audio = None
        if self._audio is not None:
            audio = self._audio.pipe(ops.do_action(note_input), ops.publish())
            connectables.append(audio)
        if audio is not None and "voice" in self.info.modalities:
            voice_op = self.stages.voice
            if voice_op is None:
                voice_op = VoiceStage(s.voice, recognizer=self._models.voice_encoder, timing=self._timings["voice"],
                                      handoff=handoff("voice", 3000 if live else file_q, OverflowPolicy.BLOCK))
            inputs["voice"] = audio.pipe(voice_op, ops.do_action(lambda f: self._advance("voice", _time_of(f))))
        if audio is not None and "text" in self.info.modalities:
            self._speech_stage = SpeechStage(
                s.asr, recognizer=self._models.whisper, on_event=self._on_speech,
                handoff=handoff("asr", 3000 if live else file_q, OverflowPolicy.BLOCK),
                timing=self._timings["asr"], replacement=self.stages.speech)
            text_stage = TextStage(s.text, encoder=self._models.text_encoder, timing=self._timings["text"],
                                   handoff=handoff("text", 1000 if live else file_q, OverflowPolicy.BLOCK))
            inputs["text"] = audio.pipe(self._speech_stage, text_stage, ops.do_action(self._on_text))

        from ..fusion.operator import estimate_emotions, stream_specs
        from ..sync import synchronize

        budgets = {"face_budget_s": s.live_face_budget_s, "voice_budget_s": s.live_voice_budget_s,
                   "text_budget_s": s.live_text_budget_s} if live else {}
        specs = [spec for spec in stream_specs(**budgets) if spec.name in inputs]
        for name, source in list(inputs.items()):
            inputs[name] = source.pipe(ops.do_action(on_completed=lambda n=name: self._ready_end(n)))
        start_s = 0.0
        if live and not anchored:
            # live: the first window starts at the hop boundary at or before now, not at the
            # session origin (which may be well before capture began)
            now_s = max(clock(), 0) / NS_PER_S
            start_s = math.floor(now_s / s.hop_s) * s.hop_s
        self._synced = synced = synchronize(inputs, length_s=s.length_s, hop_s=s.hop_s, start_s=start_s,
                                            streams=specs, clock=clock if live else None,
                                            poll_interval_s=s.poll_interval_s)
        w = synced.window
        self._ready = ReadyTracker(w.start_ns, w.hop_ns, w.length_ns, clock, tuple(inputs))
        fusion_op = self.stages.fusion or estimate_emotions(recognizer=self._models.emotion)
        fusion_started: dict[int, float] = {}

        def window_out(window: Any) -> None:  # on the thread that completed the window
            self._window_emitted[window.start_ns] = (time.perf_counter(), clock())

        def fusion_in(window: Any) -> None:  # on the fusion thread
            fusion_started[window.start_ns] = time.perf_counter()

        def fusion_out(estimate: Any) -> None:
            started = fusion_started.pop(estimate.start_ns, None)
            if started is not None:
                self._timings["fusion"].add(time.perf_counter() - started)
            self._measure_latency(estimate)

        estimates = synced.windows.pipe(
            ops.do_action(window_out),
            handoff("fusion", 256 if live else file_q, OverflowPolicy.BLOCK),
            ops.do_action(fusion_in),
            fusion_op,
            ops.do_action(fusion_out),
        )
        self._start_dispatcher()
        self._graph.add(estimates.subscribe(emit, self._fail, self._complete))
        self._t_running = time.perf_counter()
        for connectable in connectables:
            t = threading.Thread(target=self._connect, args=(connectable,), name="streamline-pipeline-connect",
                                 daemon=True)
            self._connect_threads.append(t)
            t.start()

    def _connect(self, connectable: Any) -> None:
        try:
            disposable = connectable.connect()
        except Exception as exc:  # noqa: BLE001 - a source that fails to start
            self._fail(exc)
            return
        if disposable is not None:
            self._graph.add(disposable)

    # -- taps (on the stage threads) ---------------------------------------------------------

    def _advance(self, stream: str, t_ns: int) -> None:
        if self._ready is not None:
            self._ready.advance(stream, t_ns)
        if t_ns > self._media_ns:
            self._media_ns = t_ns

    def _ready_end(self, stream: str) -> None:
        if self._ready is not None:
            self._ready.end(stream)

    def _on_face(self, observation: Any) -> None:
        self._advance("face", _time_of(observation))
        if not hasattr(observation, "pts_ns"):  # a Watermark from a user stage
            return
        self._counts["faces"] += 1
        if getattr(observation, "present", False):
            self._counts["faces_present"] += 1
        self._emit(observation)

    def _on_text(self, item: Any) -> None:
        self._advance("text", _time_of(item))

    def _on_speech(self, item: Any) -> None:
        if isinstance(item, Word):
            if item.committed:
                self._counts["words"] += 1
        else:
            self._counts["segments"] += 1
        self._emit(item)

    def _measure_latency(self, estimate: Any) -> None:
        self._counts["estimates"] += 1
        for m in estimate.modalities:
            if m in self._modality_counts:
                self._modality_counts[m] += 1
        emitted = self._window_emitted.pop(estimate.start_ns, None)
        if not self._live:
            return
        now = self._clock()
        end = estimate.end_ns
        total_s = (now - end) / NS_PER_S
        if total_s < 0:  # a last, partial window flushed when the inputs ended: no latency to speak of
            return
        self._latency_total.add(total_s)
        if emitted is None or self._ready is None:
            return
        sync_ns = emitted[1]
        window = self._synced.window
        k = int(round((estimate.start_ns - window.start_ns) / window.hop_ns))
        names = [spec.name for spec in self._synced.specs]
        if "text" not in names:
            self._latency_excl.add(total_s)
            self._latency_words.add(0.0)
            return
        fast = [self._ready.ready_ns(name, k) for name in names if name != "text"]
        if any(t is None for t in fast):  # a fast stream missed its budget: nothing to exclude
            ready_ns = sync_ns
        else:
            ready_ns = min(max([end, *fast]), sync_ns)  # type: ignore[list-item]
        processing_ns = now - sync_ns
        excl_s = (max(ready_ns - end, 0) + processing_ns) / NS_PER_S
        self._latency_excl.add(excl_s)
        self._latency_words.add(max(total_s - excl_s, 0.0))

    # -- delivery ----------------------------------------------------------------------------

    def _emit(self, item: Any) -> None:
        if isinstance(item, self._estimate_type):
            item = _Stamped(item, time.perf_counter())
        self._events.put(item)

    def _fail(self, error: Exception) -> None:
        self._events.put(_Failure(error), force=True)

    def _complete(self) -> None:
        self._t_finished = time.perf_counter()
        self._events.put(_DONE, force=True)

    def _start_dispatcher(self) -> None:
        self._dispatcher = threading.Thread(target=self._deliver, name="streamline-pipeline-deliver", daemon=True)
        self._dispatcher.start()

    def _deliver(self) -> None:
        from ..errors import ClosedError as _Closed

        while True:
            try:
                item = self._events.get()
            except _Closed:
                return
            if item is _DONE or isinstance(item, _Failure):
                self._terminate(None if item is _DONE else item.error)
                return
            if isinstance(item, _Stamped):
                self._timings["delivery"].add(time.perf_counter() - item.t)
                item = item.item
            try:
                self._subject.on_next(item)
            except Exception:  # noqa: BLE001 - observers made by users: never kill delivery
                log.exception("a pipeline subscriber raised")

    def _terminate(self, error: Exception | None) -> None:
        with self._lock:
            if self._terminal is not None:
                return
            self._terminal = ("error", error) if error is not None else ("completed", None)
        if self._t_finished is None:
            self._t_finished = time.perf_counter()
        if error is not None:
            log.debug("pipeline %s failed: %r", self.info.label, error)
        try:
            if error is not None:
                self._subject.on_error(error)
            else:
                self._subject.on_completed()
        except Exception:  # noqa: BLE001
            log.exception("a pipeline subscriber raised in its terminal callback")
        self._finished.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the run has ended (completed, failed or closed); False on timeout."""
        return self._finished.wait(timeout_s)

    @property
    def error(self) -> Exception | None:
        """The error that ended the run, or None."""
        return self._terminal[1] if self._terminal is not None else None

    def close(self) -> None:
        """Stop everything: dispose the stages, close the sources, join every thread,
        close the face landmarker and the models this pipeline loaded. Idempotent.

        Consumers still attached get ``on_completed`` (iterators end) unless the run
        already ended.
        """
        with self._lock:
            if self._state == "closed":
                return
            self._state = "closed"
        # first the result queue: a stage blocked on it (a consumer that stopped reading, or
        # close() called from a callback on the delivery thread) is released at once
        self._events.close(discard=True)
        self._graph.dispose()  # joins the stage threads, closes the face analyzer
        self._close_sources()
        current = threading.current_thread()
        for t in self._connect_threads:
            if t is not current:
                t.join(timeout=5.0)
        if self._dispatcher is not None and self._dispatcher is not current:
            self._dispatcher.join(timeout=5.0)
        self._terminate(None)
        if self._face_stage is not None:
            for analyzer in self._face_stage.analyzers:
                analyzer.close()
        if self._speech_stage is not None:
            for asr in self._speech_stage.transcribers:
                asr.close()
        self._models.close(self._owned_models)
        self._owned_models = []

    def _close_sources(self) -> None:
        for source in self._owned_sources:
            try:
                source.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                log.debug("closing %r failed", source, exc_info=True)

    # -- consuming ---------------------------------------------------------------------------

    def subscribe(
        self,
        on_estimate: Callable[[Any], None] | None = None,
        *,
        on_word: Callable[[Word], None] | None = None,
        on_segment: Callable[[SpeechSegment], None] | None = None,
        on_face: Callable[[Any], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
    ) -> abc.DisposableBase:
        """Callbacks, called on the pipeline's delivery thread (never under a lock).

        A callback that raises is logged, reported to ``on_error`` and detached; the
        pipeline and the other consumers go on. Does not start the pipeline.

        Returns:
            A Disposable that detaches the callbacks.
        """
        from ..face.analyzer import FaceObservation

        routes: list[tuple[type, Callable[[Any], None]]] = []
        for cls, cb in ((self._estimate_type, on_estimate), (Word, on_word), (SpeechSegment, on_segment),
                        (FaceObservation, on_face)):
            if cb is not None:
                routes.append((cls, cb))

        def route(item: Any) -> None:
            for cls, cb in routes:
                if isinstance(item, cls):
                    cb(item)
                    return

        observer = SafeObserver(route, on_error, on_completed)
        observer.subscription = self._subject.subscribe(observer.on_next, observer.on_error, observer.on_completed)
        return observer.subscription

    def __iter__(self) -> EventIterator[Any]:
        """A blocking iterator over the estimates; starts the pipeline."""
        return self.iter_estimates()

    def iter_estimates(self, *, start: bool = True) -> EventIterator[Any]:
        """A blocking iterator over the estimates (``start=False``: set up only, start later)."""
        it = EventIterator(self.estimates)
        if start:
            self.start()
        return it

    def iter_events(self, *, start: bool = True) -> EventIterator[Any]:
        """A blocking iterator over every result (estimates, words, segments, face observations).

        Its ``get(timeout_s)`` waits at most that long (None on timeout), for polling loops.
        """
        it = EventIterator(self.events)
        if start:
            self.start()
        return it

    def __aiter__(self) -> AsyncEventIterator[Any]:
        """An async iterator over the estimates; starts the pipeline."""
        return self.aiter_estimates()

    def aiter_estimates(self, *, start: bool = True) -> AsyncEventIterator[Any]:
        """An async iterator over the estimates (``start=False``: set up only, start later)."""
        it = AsyncEventIterator(self.estimates)
        if start:
            self.start()
        return it

    def aiter_events(self, *, start: bool = True) -> AsyncEventIterator[Any]:
        """An async iterator over every result."""
        it = AsyncEventIterator(self.events)
        if start:
            self.start()
        return it

    def run(self, timeout_s: float | None = None) -> list[Any]:
        """Start, wait for the end, return the estimates (for files and scripts).

        A pipeline runs once: build a new one to analyse the input again.

        Raises:
            StreamlineError: the run failed (the stage's error).
            ClosedError: the pipeline already ran to its end, or was closed (a second
                ``run()`` would otherwise return an empty list).
            TimeoutError: it did not finish within ``timeout_s``.
        """
        if self._state == "closed":
            raise ClosedError(f"{self.info.label}: Pipeline.run() after close()")
        if self._t_finished is not None:
            raise ClosedError(
                f"{self.info.label}: Pipeline.run() after the pipeline already ran to its end; "
                "a pipeline runs once, build a new one (Pipeline.from_file(...)) to analyse it again"
            )
        out: list[Any] = []
        it = EventIterator(self.estimates)
        self.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                it.close()
                raise TimeoutError(f"{self.info.label}: the pipeline did not finish within {timeout_s} s")
            try:
                item = it.get(remaining)
            except StopIteration:
                return out
            if item is not None:
                out.append(item)

    # -- metrics -----------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """A snapshot of the pipeline's metrics, as plain JSON-able data.

        Keys: ``mode`` ("file" or "live"), ``elapsed_s`` (since the sources started),
        ``load_s`` (model loading), ``media_s`` (media time processed: from the start of
        a file, or live from the first captured item, to the furthest item time the
        stages reached), ``rtf``
        (elapsed / media time), ``estimates``, ``words``, ``segments``, ``faces``,
        ``faces_present``, ``stages`` (per stage: ``count``, ``p50_ms``, ``p95_ms``,
        ``max_ms``, ``mean_ms`` of the time per item), ``queues`` (per hand-off:
        depth, max depth, delivered, dropped, seconds blocked), ``estimate_latency``
        (live only: ``total``, ``excluding_words``, ``waiting_for_words``, each with
        percentiles in ms, emission time minus window end on the session clock),
        ``word_lag`` (committed-word lag in audio seconds: p50, p95, max; None before the
        first committed word), ``sync`` (windows, incomplete windows, late items per stream), ``modality_coverage``
        (share of estimates with each modality present).
        """
        now = time.perf_counter()
        started = self._t_running
        end = self._t_finished if self._t_finished is not None else now
        elapsed = (end - started) if started is not None else 0.0
        media_s = max(self._media_ns - (self._media_origin_ns or 0), 0) / NS_PER_S
        out: dict[str, Any] = {
            "mode": "live" if self._live else "file",
            "input": self.info.label,
            "modalities": list(self.info.modalities),
            "elapsed_s": round(elapsed, 3),
            "load_s": round((started - self._t_started), 3) if started and self._t_started else None,
            "media_s": round(media_s, 3),
            "rtf": round(elapsed / media_s, 4) if media_s > 0 else None,
            **dict(self._counts),
            "stages": {name: rec.as_dict() for name, rec in self._timings.items() if rec.count},
            "queues": {name: h.stats.as_dict() for name, h in self._handoffs.items()},
        }
        out["queues"]["events"] = self._events.stats.as_dict()
        for source in self._owned_sources:
            for kind, st in getattr(source, "stats", {}).items():
                out["queues"][f"source_{kind}"] = st.queue.as_dict()
        if self._live:
            out["estimate_latency"] = {
                "total": self._latency_total.as_dict(),
                "excluding_words": self._latency_excl.as_dict(),
                "waiting_for_words": self._latency_words.as_dict(),
            }
        else:
            out["estimate_latency"] = None
        if self._speech_stage is not None and self._speech_stage.transcribers:
            st = self._speech_stage.transcribers[-1].stats
            # without a committed word there is no lag to report (not a lag of 0 s)
            out["word_lag"] = {"p50_s": round(st.lag_percentile_s(50), 3), "p95_s": round(st.lag_percentile_s(95), 3),
                               "max_s": round(st.lag_max_s, 3)} if st.words_committed else None
            out["asr"] = st.as_dict()
        else:
            out["word_lag"] = None
        if self._face_stage is not None and self._face_stage.analyzers:
            out["face"] = self._face_stage.analyzers[-1].stats.as_dict() \
                if hasattr(self._face_stage.analyzers[-1].stats, "as_dict") else None
        sync_stats = self._synced.stats if self._synced is not None else None
        if sync_stats is not None:
            out["sync"] = {"windows": sync_stats.windows, "incomplete_windows": sync_stats.incomplete_windows,
                           "late": sync_stats.late,
                           "late_by_stream": {n: st.late for n, st in sync_stats.streams.items()}}
        n = self._counts["estimates"]
        out["modality_coverage"] = {m: round(self._modality_counts[m] / n, 4) if n else 0.0
                                    for m in self.info.modalities}
        return out


def _one_model_serves_both(asr: Any, voice: Any) -> bool:
    """Whether the speech and voice-embedding Whisper settings load the same model files the same way."""
    same = ("model", "model_dir", "cache_dir", "compute_type")
    return all(getattr(asr, f) == getattr(voice, f) for f in same)


def _time_of(item: Any) -> int:
    """An item's time on the session timeline: interval start, point time, or watermark."""
    for name in ("start_ns", "pts_ns", "t_ns"):
        t = getattr(item, name, None)
        if t is not None:
            return int(t)
    raise ConfigError(f"pipeline: a stage emitted {type(item).__name__}, which has no start_ns, pts_ns or t_ns")


def _preload(models: PipelineModels | None, settings: PipelineSettings,
             modalities: tuple[str, ...]) -> tuple[PipelineModels, list[str]]:
    """Load the missing models now; returns the set and the names loaded here (owned)."""
    models = models if models is not None else PipelineModels()
    owned: list[str] = []
    try:
        models._fill(settings, modalities, owned)
    except BaseException:
        models.close(owned)
        raise
    return models, owned


class _Stamped:
    __slots__ = ("item", "t")

    def __init__(self, item: Any, t: float) -> None:
        self.item = item
        self.t = t


