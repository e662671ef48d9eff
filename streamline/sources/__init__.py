"""Sources: files and devices as timestamped reactive streams on one session timeline.

- :func:`open_media` / :func:`read_audio` / :func:`probe`: files (PyAV).
- :func:`camera`, :func:`microphone`: live capture (v4l2/alsa, avfoundation, dshow).
- :func:`synthetic`: a lavfi test pattern and tone through the live path.
"""

from ._source import MediaSource, StreamStats
from .devices import SessionClock, camera, default_session_clock, microphone, synthetic
from .media import open_media, probe, read_audio

__all__ = [
    "MediaSource",
    "SessionClock",
    "StreamStats",
    "camera",
    "default_session_clock",
    "microphone",
    "open_media",
    "probe",
    "read_audio",
    "synthetic",
]
