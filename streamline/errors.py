"""The exceptions streamline raises.

Every error is a :class:`StreamlineError` and also the built-in exception that
best describes it, so callers can catch either "anything from streamline" or
the familiar built-in (the pattern PyAV uses)::

    Exception
     └── StreamlineError
          ├── MediaError (ValueError)            a file cannot be read as media
          │    ├── MediaNotFoundError (FileNotFoundError)
          │    ├── NoMediaStreamsError           neither audio nor video inside
          │    └── CorruptMediaError             truncated or undecodable data
          ├── DeviceError (OSError)              a camera or microphone failed
          ├── TimestampError (ValueError)        timestamps that cannot be used
          ├── ConfigError (ValueError)           an invalid setting
          ├── ModelNotFoundError (FileNotFoundError)
          │                                      a model file is not installed
          ├── MissingExtraError (ImportError)    an optional extra is not installed
          └── ClosedError (RuntimeError)         an object used after close()

Messages name the input (a path, a stream, a setting) and the problem.
"""

from __future__ import annotations

__all__ = [
    "StreamlineError",
    "MediaError",
    "MediaNotFoundError",
    "NoMediaStreamsError",
    "CorruptMediaError",
    "DeviceError",
    "TimestampError",
    "ConfigError",
    "ModelNotFoundError",
    "MissingExtraError",
    "ClosedError",
]


class StreamlineError(Exception):
    """Base class of every error raised by streamline."""


class MediaError(StreamlineError, ValueError):
    """A file or stream cannot be read as audio or video."""


class MediaNotFoundError(MediaError, FileNotFoundError):
    """The media file does not exist."""


class NoMediaStreamsError(MediaError):
    """The container holds neither an audio nor a video stream."""


class CorruptMediaError(MediaError):
    """The data is truncated or cannot be decoded."""


class DeviceError(StreamlineError, OSError):
    """A capture device could not be opened or stopped delivering."""


class TimestampError(StreamlineError, ValueError):
    """Timestamps that cannot be used (NaN, non-monotonic where order is required)."""


class ConfigError(StreamlineError, ValueError):
    """A setting has an invalid value."""


class ModelNotFoundError(StreamlineError, FileNotFoundError):
    """A model file is not installed; the message names the package or setting to fix it."""


class MissingExtraError(StreamlineError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class ClosedError(StreamlineError, RuntimeError):
    """An object was used after ``close()``."""
