"""Face analysis speed: per-frame cost, and the rate sustained beside speech recognition.

    python benchmarks/face_bench.py [--seconds 15] [--cores 2]

Figures (all on ``--cores`` CPUs, by ``os.sched_setaffinity``):

* ``ms_per_frame_640x480`` / ``ms_per_frame_1280x720``: one FaceAnalyzer.process
  call (conversion, MediaPipe FaceLandmarker with blendshapes and the
  transformation matrix, pose, tracking), median over 60 frames of a real face
  (the GRID speaker; the talking-head clip when ../shared/data is present),
  rescaled to that size, after a warm-up. Decoding is not included
  (benchmarks/sources_bench.py measures it: ~1 ms per 640x480 frame).
* ``ms_per_frame_640x480_expression``: the same with the facex expression on every frame.
* ``fps_sustained``: face analysis of every frame, as fast as it goes, at 640x480,
  for ``--seconds`` of wall time, while the speech path transcribes the same
  clip's audio in another thread, paced at real time as a live session would
  (looping the audio). ``speech_rtf`` is the speech path's compute time over
  the audio time it covered (it must stay < 1 to keep up).
* ``fps_sustained_speech_flat_out``: the same, but speech recognition runs as
  fast as it can (the worst case: a batch job on a file).
* ``live_15fps_*``: the live configuration: one frame due every 1/15 s (with the
  expression at 5 fps) beside real-time speech recognition: the rate achieved,
  slots missed, the share of wall time the face path was busy, and the speech RTF.

The speech load is ``streamline.speech.asr.StreamingTranscriber`` (Whisper
tiny.en through faster-whisper, VAD-gated) when importable, otherwise
faster-whisper tiny.en directly on 5 s windows; ``speech_load`` says which.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable


REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
TALKING_HEAD = SHARED / "talking_head" / "edtalk" / "uncrop_Obama.mp4"
BUNDLED = REPO / "examples" / "media" / "grid_bbaf2n.mpg"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _pin_cores(cores: int) -> list[int]:
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[:cores]
    os.sched_setaffinity(0, chosen)
    return chosen


def _frames(path: Path, limit: int = 250) -> list:
    from streamline.sources import open_media

    frames: list = []
    done = threading.Event()
    with open_media(path, audio=False) as media:
        media.video.subscribe(frames.append, lambda e: done.set(), done.set)
        done.wait(120)
    return frames[:limit]


def _resized(frames: list, size: tuple[int, int]) -> list:
    import cv2

    from streamline.types import VideoFrame

    return [VideoFrame(f.pts_ns, cv2.resize(f.image, size, interpolation=cv2.INTER_AREA)) for f in frames]


def ms_per_frame(frames: list, size: tuple[int, int], *, expression: bool = False, n: int = 60) -> tuple[float, float]:
    """Median ms per analysed frame and the fraction of frames with a face."""
    from streamline.face import FaceAnalyzer, FaceSettings
    from streamline.types import VideoFrame

    sized = _resized(frames[:n], size)
    with FaceAnalyzer(FaceSettings(fps=None, expression=expression, expression_fps=1000)) as analyzer:
        for i, frame in enumerate(sized[:10]):  # warm-up
            analyzer.process(VideoFrame(i * 40_000_000, frame.image))
        times = []
        present = 0
        for i, frame in enumerate(sized):
            started = time.perf_counter()
            obs = analyzer.process(VideoFrame((10 + i) * 40_000_000, frame.image))
            times.append(time.perf_counter() - started)
            present += obs.present
    return 1000 * statistics.median(times), present / len(sized)


class SpeechLoad:
    """Speech recognition on a clip's audio in a thread, paced at real time or flat out."""

    def __init__(self, path: Path, *, paced: bool) -> None:
        from streamline.sources import read_audio

        self.audio = read_audio(path, sample_rate_hz=16000, fill_gaps=True).samples
        self.paced = paced
        self.stop = threading.Event()
        self.compute_s = 0.0
        self.audio_s = 0.0
        self.words = 0
        self.kind, self._make = self._engine()
        self.thread = threading.Thread(target=self._run, name="bench-speech", daemon=True)
        self.error: BaseException | None = None

    def _engine(self) -> tuple[str, Callable]:
        try:
            from streamline.speech.asr import StreamingTranscriber

            return "streamline.speech.asr.StreamingTranscriber (Whisper tiny.en, VAD-gated)", StreamingTranscriber
        except Exception as exc:  # noqa: BLE001 - fall back to the bare recogniser
            logging.info("streamline.speech unavailable (%r): faster-whisper directly", exc)
            return "faster-whisper tiny.en directly, 5 s windows", None

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            if self._make is not None:
                self._run_streamline()
            else:
                self._run_whisper()
        except BaseException as exc:  # noqa: BLE001 - reported in the figures
            self.error = exc

    def _pace(self, wall_start: float, audio_pos_s: float) -> None:
        if self.paced:
            delay = wall_start + audio_pos_s - time.perf_counter()
            if delay > 0:
                self.stop.wait(delay)

    def _run_streamline(self) -> None:
        from streamline.types import AudioChunk

        step = 320  # 20 ms chunks, as a microphone delivers them
        wall_start = time.perf_counter()
        position = 0  # samples pushed over all loops
        with self._make() as asr:
            while not self.stop.is_set():
                for offset in range(0, len(self.audio) - step + 1, step):
                    if self.stop.is_set():
                        break
                    chunk = AudioChunk(position * 1_000_000_000 // 16000, self.audio[offset : offset + step], 16000)
                    self._pace(wall_start, (position + step) / 16000)
                    started = time.perf_counter()
                    self.words += sum(1 for w in asr.push(chunk) if w.committed)
                    self.compute_s += time.perf_counter() - started
                    position += step
                    self.audio_s = position / 16000

    def _run_whisper(self) -> None:
        from faster_whisper import WhisperModel

        from streamline.models import resolve_model

        model = WhisperModel(str(resolve_model("whisper-tiny.en")), device="cpu", compute_type="int8", cpu_threads=1)
        window = 5 * 16000
        wall_start = time.perf_counter()
        position = 0
        while not self.stop.is_set():
            for offset in range(0, len(self.audio) - window + 1, window):
                if self.stop.is_set():
                    break
                self._pace(wall_start, (position + window) / 16000)
                started = time.perf_counter()
                segments, _ = model.transcribe(self.audio[offset : offset + window], beam_size=5, word_timestamps=True)
                self.words += sum(len(s.words or []) for s in segments)
                self.compute_s += time.perf_counter() - started
                position += window
                self.audio_s = position / 16000

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def live_at_rate(frames: list, clip: Path, *, seconds: float, fps: float = 15.0) -> dict[str, float]:
    """The live configuration: a frame due every 1/fps s (latest wins), speech paced at real time."""
    from streamline.face import FaceAnalyzer, FaceSettings
    from streamline.types import VideoFrame

    sized = _resized(frames, (640, 480))
    speech = SpeechLoad(clip, paced=True)
    period = 1.0 / fps
    late = 0
    analysed = 0
    with FaceAnalyzer(FaceSettings(fps=None, expression=True, expression_fps=5)) as analyzer:
        for i, frame in enumerate(sized[:5]):
            analyzer.process(VideoFrame(i * 40_000_000, frame.image))
        speech.start()
        time.sleep(1.0)
        started = time.perf_counter()
        t = 5
        while (now := time.perf_counter()) - started < seconds:
            due = started + analysed * period
            if now < due:
                time.sleep(due - now)
            elif now - due > period:
                late += 1  # this slot's frame would have been replaced by a newer one
            frame = sized[t % len(sized)]
            analyzer.process(VideoFrame(int((time.perf_counter() - started) * 1e9) + t, frame.image))
            analysed += 1
            t += 1
        elapsed = time.perf_counter() - started
        busy = analyzer.stats.analysis_s
    speech.close()
    if speech.error is not None:
        raise speech.error
    return {
        "fps": analysed / elapsed,
        "late": late,
        "face_cpu_share": busy / elapsed,
        "speech_rtf": speech.compute_s / max(speech.audio_s, 1e-9),
    }


def fps_sustained(frames: list, clip: Path, *, seconds: float, paced: bool) -> dict[str, float | str]:
    from streamline.face import FaceAnalyzer, FaceSettings
    from streamline.types import VideoFrame

    sized = _resized(frames, (640, 480))
    speech = SpeechLoad(clip, paced=paced)
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        for i, frame in enumerate(sized[:5]):  # warm-up before the clock starts
            analyzer.process(VideoFrame(i * 40_000_000, frame.image))
        speech.start()
        time.sleep(1.0)  # let the recogniser load and start
        analysed = 0
        t = 5
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            frame = sized[t % len(sized)]
            analyzer.process(VideoFrame(t * 40_000_000, frame.image))
            analysed += 1
            t += 1
        elapsed = time.perf_counter() - started
    speech.close()
    if speech.error is not None:
        raise speech.error
    return {
        "fps": analysed / elapsed,
        "speech_rtf": speech.compute_s / max(speech.audio_s, 1e-9),
        "speech_audio_s": speech.audio_s,
        "speech_words": speech.words,
        "speech_load": speech.kind,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="wall time of each sustained run")
    parser.add_argument("--cores", type=int, default=2, help="CPUs to run on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cores = _pin_cores(args.cores)
    clip = TALKING_HEAD if TALKING_HEAD.exists() else BUNDLED
    frames = _frames(clip)
    print(f"clip: {clip.name} ({len(frames)} frames used), cores: {cores}")

    results: dict[str, float | str | int] = {"clip": clip.name, "cores": len(cores)}
    for width, height in ((640, 480), (1280, 720)):
        ms, found = ms_per_frame(frames, (width, height))
        results[f"ms_per_frame_{width}x{height}"] = round(ms, 2)
        results[f"face_found_{width}x{height}"] = round(found, 3)
        print(f"{width}x{height}: {ms:.2f} ms per frame (face in {found:.0%} of frames)")
    ms, _ = ms_per_frame(frames, (640, 480), expression=True)
    results["ms_per_frame_640x480_expression"] = round(ms, 2)
    print(f"640x480 with expression on every frame: {ms:.2f} ms per frame")

    paced = fps_sustained(frames, clip, seconds=args.seconds, paced=True)
    results["fps_sustained"] = round(paced["fps"], 1)
    results["speech_rtf"] = round(paced["speech_rtf"], 3)
    results["speech_load"] = paced["speech_load"]
    print(
        f"sustained beside real-time speech recognition: {paced['fps']:.1f} fps of face analysis "
        f"(speech RTF {paced['speech_rtf']:.3f} over {paced['speech_audio_s']:.1f} s audio, "
        f"{paced['speech_words']} words; {paced['speech_load']})"
    )
    flat = fps_sustained(frames, clip, seconds=args.seconds, paced=False)
    results["fps_sustained_speech_flat_out"] = round(flat["fps"], 1)
    results["speech_rtf_flat_out"] = round(flat["speech_rtf"], 3)
    print(
        f"sustained beside flat-out speech recognition: {flat['fps']:.1f} fps "
        f"(speech RTF {flat['speech_rtf']:.3f} over {flat['speech_audio_s']:.1f} s audio)"
    )
    live = live_at_rate(frames, clip, seconds=args.seconds)
    results["live_15fps_achieved_fps"] = round(live["fps"], 1)
    results["live_15fps_late_frames"] = int(live["late"])
    results["live_15fps_face_busy_share"] = round(live["face_cpu_share"], 3)
    results["live_15fps_speech_rtf"] = round(live["speech_rtf"], 3)
    print(
        f"live configuration (face + expression at 15/5 fps, speech at real time): {live['fps']:.1f} fps, "
        f"{int(live['late'])} late, face busy {live['face_cpu_share']:.0%} of the time, speech RTF {live['speech_rtf']:.3f}"
    )
    results["target_fps"] = 15
    results["meets_target"] = bool(results["fps_sustained"] >= 15)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
