"""The pipeline's default stages: face, voice, speech and text features, each on a thread of its own.

Each stage is a reactivex operator built around the push/pull core of its part
(:class:`~streamline.face.FaceAnalyzer`, :class:`~streamline.features.VoiceEmbedder`,
:class:`~streamline.speech.StreamingTranscriber`, :func:`~streamline.features.text_features`),
behind a :class:`~streamline.flow.Handoff`, timing every item into a
:class:`~streamline.pipeline.metrics.LatencyRecorder`. Per-subscription state
is created inside ``subscribe``; a stage's resources are released at completion,
error or dispose.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Callable

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.subject import Subject

from ..face.analyzer import FaceAnalyzer, FaceSettings
from ..features.text import TextEncoder, TextSettings, text_features
from ..features.voice_embedding import VoiceEmbedder, VoiceEmbeddingSettings
from ..flow import Handoff, engine_operator
from ..speech.asr import AsrSettings, StreamingTranscriber
from ..speech.whisper import WhisperRecognizer
from ..sync import Watermark
from ..types import AudioChunk, SpeechSegment, VideoFrame, Word
from .metrics import LatencyRecorder

__all__ = ["FaceStage", "VoiceStage", "SpeechStage", "TextStage", "TextSpans"]

log = logging.getLogger(__name__)


class FaceStage:
    """Operator ``Observable[VideoFrame] -> Observable[FaceObservation]`` on a thread of its own.

    One :class:`FaceAnalyzer` per subscription (kept in :attr:`analyzers` so the
    pipeline can check they were closed).

    Args:
        settings: face settings.
        handoff: the hand-off in front of the analyzer (bound and policy chosen by the pipeline).
        timing: where the per-frame analysis time goes.
    """

    def __init__(self, settings: FaceSettings, *, handoff: Handoff, timing: LatencyRecorder) -> None:
        self.settings = settings
        self.handoff = handoff
        self.timing = timing
        self.analyzers: list[FaceAnalyzer] = []

    def __call__(self, source: Observable[VideoFrame]) -> Observable[Any]:
        def make() -> FaceAnalyzer:
            analyzer = FaceAnalyzer(self.settings)
            self.analyzers.append(analyzer)
            return analyzer

        def push(analyzer: FaceAnalyzer, frame: VideoFrame) -> list[Any]:  # on the face thread
            started = time.perf_counter()
            observation = analyzer.analyze(frame)
            if observation is None:
                return []
            self.timing.add(time.perf_counter() - started)
            return [observation]

        return engine_operator(make, push, lambda analyzer: (), upstream=self.handoff)(source)


class VoiceStage:
    """Operator ``Observable[AudioChunk] -> Observable[VoiceEmbedding | Watermark]`` on a thread of its own.

    After each hop's item comes a :class:`~streamline.sync.Watermark` at the hop's
    end, so a window closes as soon as its last hop is embedded rather than when
    the next hop's item arrives.
    """

    def __init__(self, settings: VoiceEmbeddingSettings, *, recognizer: WhisperRecognizer | None,
                 handoff: Handoff, timing: LatencyRecorder) -> None:
        self.settings = settings
        self.recognizer = recognizer
        self.handoff = handoff
        self.timing = timing

    def __call__(self, source: Observable[AudioChunk]) -> Observable[Any]:
        def with_watermarks(items: list[Any]) -> list[Any]:
            out: list[Any] = []
            for item in items:
                out += [item, Watermark(item.end_ns)]
            return out

        def push(embedder: VoiceEmbedder, chunk: AudioChunk) -> list[Any]:
            started = time.perf_counter()
            items = embedder.push(chunk)
            if items:
                self.timing.add(time.perf_counter() - started)
            return with_watermarks(items)

        return engine_operator(lambda: VoiceEmbedder(self.settings, recognizer=self.recognizer), push,
                               lambda embedder: with_watermarks(embedder.flush()), close=lambda embedder: embedder.close(),
                               upstream=self.handoff)(source)


class TextSpans:
    """Turn :class:`~streamline.features.TextFeatures` into in-order synchronizer intervals.

    :func:`~streamline.features.text_features` emits, for every committed word, the
    features of the utterance's text so far, as an interval from the utterance's
    first word to its last. For the synchronizer each item becomes the span of
    what is new: from the end of the previous item of the same utterance (or the
    first word of a new one) to the new last word, and never before the stream's
    watermark, so items arrive in time order and are never late by construction.
    The value (embedding and valence) stays that of the whole utterance so far:
    a window sees the text of the words in it and, within the utterance, before it.
    """

    def __init__(self) -> None:
        self._utterance: int | None = None
        self._end_ns: int | None = None
        self.floor_ns = -(1 << 62)  # the last watermark (or item start) sent

    def span(self, features: Any) -> Any:
        if features.utterance_id == self._utterance and self._end_ns is not None:
            start = self._end_ns
        else:
            start = features.start_ns
        start = max(start, self.floor_ns)
        end = max(features.end_ns, start)
        self._utterance, self._end_ns = features.utterance_id, end
        self.floor_ns = start
        return dataclasses.replace(features, start_ns=start, end_ns=end)

    def watermark(self, t_ns: int) -> Watermark | None:
        """A Watermark to send, or None if it would not advance the stream."""
        if t_ns <= self.floor_ns:
            return None
        self.floor_ns = t_ns
        return Watermark(t_ns)


class SpeechStage:
    """Operator ``Observable[AudioChunk] -> Observable[Word | Watermark]`` on a thread of its own.

    Streaming recognition (:class:`StreamingTranscriber`, or a user operator producing
    Word / SpeechSegment / Watermark items). Every word (committed and partial) and
    speech segment goes to ``on_event``; the output carries the committed words and,
    after each chunk, a :class:`Watermark`: the earliest time a word committed later
    can start (:meth:`StreamingTranscriber.watermark_ns`, never before the last committed
    word's end), so that windows close during silences. :class:`TextStage` turns
    it into the synchronizer's ``text`` stream.

    Args:
        asr_settings: recognizer settings.
        recognizer: the shared Whisper model.
        handoff: the hand-off in front of the recognizer.
        on_event: called with each Word and SpeechSegment (on the speech thread).
        timing: time per audio chunk in the recognizer.
        replacement: a user speech operator used instead of the transcriber.
    """

    def __init__(self, asr_settings: AsrSettings, *, recognizer: WhisperRecognizer | None, handoff: Handoff,
                 on_event: Callable[[Any], None], timing: LatencyRecorder,
                 replacement: Callable[[Observable[AudioChunk]], Observable[Any]] | None = None) -> None:
        self.asr_settings = asr_settings
        self.recognizer = recognizer
        self.handoff = handoff
        self.on_event = on_event
        self.timing = timing
        self.replacement = replacement
        self.transcribers: list[StreamingTranscriber] = []

    def __call__(self, source: Observable[AudioChunk]) -> Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            lock = threading.Lock()
            state = {"done": False, "last_end_ns": -(1 << 62), "watermark_ns": -(1 << 62)}
            asr: StreamingTranscriber | None = None
            if self.replacement is None:
                try:
                    asr = StreamingTranscriber(self.asr_settings, recognizer=self.recognizer)
                except Exception as exc:  # noqa: BLE001 - a missing model goes to on_error
                    observer.on_error(exc)
                    return Disposable()
                self.transcribers.append(asr)

            def finish(error: Exception | None) -> None:
                with lock:
                    if state["done"]:
                        return
                    state["done"] = True
                if asr is not None:
                    asr.close()
                if error is not None:
                    observer.on_error(error)
                else:
                    observer.on_completed()

            def handle(items: list[Any]) -> None:
                for item in items:
                    if isinstance(item, Word):
                        self.on_event(item)
                        if item.committed:
                            state["last_end_ns"] = max(state["last_end_ns"], item.end_ns)
                            observer.on_next(item)
                    elif isinstance(item, SpeechSegment):
                        self.on_event(item)
                    elif isinstance(item, Watermark):
                        advance(item.t_ns)

            def advance(bound: int | None) -> None:
                t = state["last_end_ns"] if bound is None else max(bound, state["last_end_ns"])
                if t > state["watermark_ns"]:
                    state["watermark_ns"] = t
                    observer.on_next(Watermark(t))

            def on_chunk(chunk: AudioChunk) -> None:  # on the speech thread
                if state["done"]:
                    return
                assert asr is not None
                started = time.perf_counter()
                words = asr.push(chunk)
                segments = asr.take_segments()
                self.timing.add(time.perf_counter() - started)
                handle(words)
                handle(segments)
                advance(asr.watermark_ns())

            def on_item(item: Any) -> None:  # a replacement operator's output
                if not state["done"]:
                    handle([item])
                    advance(None)

            def on_completed() -> None:
                if state["done"]:
                    return
                if asr is not None:
                    handle(asr.finish())
                    handle(asr.take_segments())
                finish(None)

            upstream = SingleAssignmentDisposable()
            if self.replacement is None:
                upstream.disposable = source.pipe(self.handoff).subscribe(
                    on_chunk, finish, on_completed, scheduler=scheduler)
            else:
                upstream.disposable = source.pipe(self.handoff, self.replacement).subscribe(
                    on_item, finish, on_completed, scheduler=scheduler)

            def dispose() -> None:
                upstream.dispose()  # joins the speech thread
                if asr is not None:
                    asr.close()

            return Disposable(dispose)

        return reactivex.create(subscribe)


class TextStage:
    """Operator ``Observable[Word | Watermark] -> Observable[TextFeatures | Watermark]`` on a thread of its own.

    The committed words go through :func:`~streamline.features.text_features` (the
    embedding and valence of the utterance's text so far) and :class:`TextSpans`;
    watermarks pass through in order. A thread of its own, so that embedding does
    not hold up the recognizer.

    Args:
        settings, encoder: text feature settings and the shared encoder.
        handoff: the hand-off in front of it.
        timing: time per committed word.
    """

    def __init__(self, settings: TextSettings, *, encoder: TextEncoder | None, handoff: Handoff,
                 timing: LatencyRecorder) -> None:
        self.settings = settings
        self.encoder = encoder
        self.handoff = handoff
        self.timing = timing

    def __call__(self, source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            spans = TextSpans()
            words_in: Subject = Subject()
            failed: list[Exception] = []

            def forward(features: Any) -> None:
                observer.on_next(spans.span(features))

            text_sub = words_in.pipe(text_features(self.settings, encoder=self.encoder)).subscribe(
                forward, failed.append)

            def on_next(item: Any) -> None:  # on the text thread
                if isinstance(item, Watermark):
                    wm = spans.watermark(item.t_ns)
                    if wm is not None:
                        observer.on_next(wm)
                    return
                started = time.perf_counter()
                words_in.on_next(item)
                self.timing.add(time.perf_counter() - started)
                if failed:
                    raise failed[0]  # the hand-off turns it into on_error and stops the input

            subscription = source.pipe(self.handoff).subscribe(on_next, observer.on_error, observer.on_completed,
                                                               scheduler=scheduler)

            def dispose() -> None:
                subscription.dispose()  # joins the text thread
                text_sub.dispose()

            return Disposable(dispose)

        return reactivex.create(subscribe)
