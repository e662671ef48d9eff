"""Dataset loaders: labelled media and texts from emotion corpora, as :class:`LabeledItem` lists.

Every loader maps the corpus's own labels onto the 7 streamline classes
(:data:`~streamline.fusion.types.CLASSES`) and keeps the speaker (or subject)
so splits can be made by person, never by file. Labels outside the 7 classes are
dropped (and counted in the log) unless a loader documents another choice:

=============  ==============================================================
corpus         labels
=============  ==============================================================
RAVDESS        file-name code ``MM-VV-EE-II-SS-RR-AA``; EE 01 neutral, 02 calm
               (-> neutral), 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust,
               08 surprised; speaker = actor AA (Livingstone & Russo 2018)
MEAD           emotion word in the file name (``M030_front_angry_level3_001``,
               ``M030_sad_3_001``, ``happy.mp4``); contempt dropped
MELD           ``Emotion`` column: joy -> happy, sadness -> sad, anger -> angry,
               fear -> fearful, surprise -> surprised, disgust, neutral;
               text in ``Utterance``; group = ``Dialogue_ID`` (Poria et al. 2019)
EMO-DB         letter 6 of ``03a01Wa.wav``: W angry, F happy, T sad, A fearful,
               E disgust, N neutral; L boredom dropped by default, or mapped to
               neutral with ``boredom="neutral"`` (Burkhardt et al. 2005)
CREMA-D        ``AAAA_SSS_EEE_LL`` file names: ANG, DIS, FEA, HAP, NEU, SAD; the
               acted label, or a crowd vote column (Cao et al. 2014)
faces          the ``faces/manifest.csv`` of shared/data (JAFFE, Taiwanese
               performers); speaker = subject
manifest       generic CSV ``path,label[,transcript]`` (a header row is optional)
=============  ==============================================================
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from ..errors import ConfigError, MediaNotFoundError
from .types import CLASSES

__all__ = [
    "LabeledItem",
    "LABEL_ALIASES",
    "normalize_label",
    "load_ravdess",
    "load_mead",
    "load_meld",
    "load_emodb",
    "load_crema_d",
    "load_faces",
    "load_manifest",
    "count_labels",
]

log = logging.getLogger(__name__)

#: Raw label spellings (lower case) -> streamline class. Anything not here and
#: not a class name itself has no class (e.g. contempt, boredom).
LABEL_ALIASES: dict[str, str] = {
    **{c: c for c in CLASSES},
    "calm": "neutral",
    "neu": "neutral",
    "n": "neutral",
    "joy": "happy",
    "happiness": "happy",
    "hap": "happy",
    "h": "happy",
    "sadness": "sad",
    "s": "sad",
    "anger": "angry",
    "ang": "angry",
    "a": "angry",
    "fear": "fearful",
    "fea": "fearful",
    "f": "fearful",
    "disgusted": "disgust",
    "dis": "disgust",
    "d": "disgust",
    "surprise": "surprised",
    "sur": "surprised",
}


@dataclass(frozen=True, slots=True)
class LabeledItem:
    """One labelled example.

    Attributes:
        path: the media file (audio, video or image), or None for a text-only item.
        label: one of :data:`CLASSES`.
        speaker: who is speaking or shown ("" when unknown); splits are made on it.
        transcript: what is said, when known, else None.
        dataset: the corpus name (``"ravdess"``, ``"meld"``...).
        group: a finer grouping when the corpus has one (MELD dialogue id), else "".
        intensity: the corpus's intensity label when it has one (RAVDESS "normal" /
            "strong"), else "".
    """

    path: str | None
    label: str
    speaker: str = ""
    transcript: str | None = None
    dataset: str = ""
    group: str = ""
    intensity: str = ""


def normalize_label(raw: str) -> str | None:
    """Map a raw label to a streamline class, or None when it has none.

    Case and surrounding space are ignored; see :data:`LABEL_ALIASES`.
    """
    return LABEL_ALIASES.get(str(raw).strip().lower())


def count_labels(items: Iterable[LabeledItem]) -> dict[str, int]:
    """Items per class, in :data:`CLASSES` order (classes with none included, as 0)."""
    counts = Counter(it.label for it in items)
    return {c: counts.get(c, 0) for c in CLASSES}


def _folder(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaNotFoundError(f"{what}: {p} does not exist")
    return p


# ------------------------------------------------------------------ RAVDESS

_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_RAVDESS_EMOTION = {
    "01": "neutral",
    "02": "neutral",  # calm, merged into neutral
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_RAVDESS_STATEMENT = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
_MEDIA_EXT = {".wav", ".flac", ".mp4", ".mp3", ".m4a", ".ogg", ".mkv", ".webm", ".avi", ".mov", ".flv", ".mpg"}


def parse_ravdess_name(stem: str) -> dict[str, str] | None:
    """Fields of a RAVDESS file stem ``MM-VV-EE-II-SS-RR-AA``, or None if it is not one.

    Returns:
        ``{"modality", "channel", "emotion_code", "label", "intensity", "statement",
        "repetition", "actor"}``; ``label`` is the streamline class (calm -> neutral).
    """
    m = _RAVDESS_RE.match(stem)
    if not m or m.group(3) not in _RAVDESS_EMOTION:
        return None
    mm, vv, ee, ii, ss, rr, aa = m.groups()
    return {
        "modality": mm,
        "channel": vv,
        "emotion_code": ee,
        "label": _RAVDESS_EMOTION[ee],
        "intensity": "strong" if ii == "02" else "normal",
        "statement": ss,
        "repetition": rr,
        "actor": aa,
    }


def load_ravdess(folder: str | os.PathLike[str], *, speech_only: bool = True) -> list[LabeledItem]:
    """RAVDESS media under ``folder`` (searched recursively), labels from the file names.

    Args:
        folder: a folder holding RAVDESS files (any of the audio-only, video-only
            or audio-video releases, original or converted, names kept).
        speech_only: keep only vocal channel 01 (speech), not song.

    Returns:
        Items sorted by path; speaker = the two-digit actor number; transcript =
        the statement; calm is mapped to neutral (8 -> 7 classes).

    Raises:
        MediaNotFoundError: ``folder`` does not exist.
    """
    root = _folder(folder, "RAVDESS")
    items = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in _MEDIA_EXT:
            continue
        f = parse_ravdess_name(p.stem)
        if f is None or (speech_only and f["channel"] != "01"):
            continue
        items.append(
            LabeledItem(
                path=str(p),
                label=f["label"],
                speaker=f["actor"],
                transcript=_RAVDESS_STATEMENT.get(f["statement"]),
                dataset="ravdess",
                intensity=f["intensity"],
            )
        )
    return items


# ------------------------------------------------------------------ MEAD

_MEAD_SPEAKER_RE = re.compile(r"^([MW]\d{3})_")


def load_mead(folder: str | os.PathLike[str]) -> list[LabeledItem]:
    """MEAD clips under ``folder`` (recursive), labels from the emotion word in the file name.

    Recognised names: ``M030_front_angry_level3_001.mp4`` (front view clips),
    ``M030_sad_3_001.mp4``, ``M030_angry.m4a``, ``happy.mp4``. Emotion words:
    angry, disgusted, fear, happy, neutral, sad, surprised (contempt has no
    streamline class and is dropped). Speaker = the ``M###``/``W###`` prefix or "".

    Raises:
        MediaNotFoundError: ``folder`` does not exist.
    """
    root = _folder(folder, "MEAD")
    items, dropped = [], 0
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in _MEDIA_EXT:
            continue
        tokens = re.split(r"[_\-.]", p.stem.lower())
        label = None
        for tok in tokens:
            if tok == "contempt":
                label = None
                dropped += 1
                break
            label = normalize_label(tok) if tok not in ("n", "a", "d", "f", "h", "s") else None
            if label is not None:
                break
        if label is None:
            continue
        m = _MEAD_SPEAKER_RE.match(p.name)
        intensity = ""
        lv = re.search(r"level(\d)|_(\d)_\d{3}$", p.stem)
        if lv:
            intensity = f"level{lv.group(1) or lv.group(2)}"
        items.append(
            LabeledItem(path=str(p), label=label, speaker=m.group(1) if m else "", dataset="mead", intensity=intensity)
        )
    if dropped:
        log.info("MEAD: %d contempt clips dropped (no streamline class)", dropped)
    return items


# ------------------------------------------------------------------ MELD

_MELD_MAP = {
    "neutral": "neutral",
    "joy": "happy",
    "sadness": "sad",
    "anger": "angry",
    "fear": "fearful",
    "disgust": "disgust",
    "surprise": "surprised",
}


def load_meld(csv_path: str | os.PathLike[str], *, media_dir: str | os.PathLike[str] | None = None) -> list[LabeledItem]:
    """MELD utterances from one of its CSVs (``train_sent_emo.csv``, ``dev_sent_emo.csv``...).

    Args:
        csv_path: the CSV (columns ``Utterance, Speaker, Emotion, Dialogue_ID,
            Utterance_ID``...).
        media_dir: the folder of the official clips (``dia{D}_utt{U}.mp4``); when
            given, items whose clip exists get its path, the others None.
            Without it every item is text-only (``path=None``).

    Returns:
        One item per row: transcript = the utterance (MELD's ``’`` and ``\\x92``
        apostrophes normalised to ``'``), label mapped (joy -> happy, ...),
        speaker = the character, group = the dialogue id.

    Raises:
        MediaNotFoundError: the CSV does not exist.
        ConfigError: the CSV lacks the MELD columns.
    """
    path = _folder(csv_path, "MELD")
    media = Path(media_dir) if media_dir is not None else None
    items = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"Utterance", "Emotion", "Dialogue_ID", "Utterance_ID"}
        if not need.issubset(reader.fieldnames or ()):
            raise ConfigError(f"MELD: {path} lacks the columns {sorted(need - set(reader.fieldnames or ()))}")
        for row in reader:
            label = _MELD_MAP.get(row["Emotion"].strip().lower())
            if label is None:
                continue
            text = row["Utterance"].replace("\u2019", "'").replace("\x92", "'").replace("\u2018", "'").strip()
            clip = None
            if media is not None:
                candidate = media / f"dia{row['Dialogue_ID']}_utt{row['Utterance_ID']}.mp4"
                clip = str(candidate) if candidate.exists() else None
            items.append(
                LabeledItem(
                    path=clip,
                    label=label,
                    speaker=row.get("Speaker", "").strip(),
                    transcript=text,
                    dataset="meld",
                    group=row["Dialogue_ID"].strip(),
                )
            )
    return items


# ------------------------------------------------------------------ EMO-DB

_EMODB_RE = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])$")
_EMODB_MAP = {"W": "angry", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
_EMODB_TEXT = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}


def load_emodb(folder: str | os.PathLike[str], *, boredom: Literal["drop", "neutral"] = "drop") -> list[LabeledItem]:
    """EMO-DB WAVs under ``folder`` (recursive), labels from the file-name letter.

    Args:
        folder: a folder with EMO-DB files (``03a01Wa.wav``: speaker 03, text a01,
            emotion W, version a).
        boredom: ``"drop"`` (default: boredom, L, has no streamline class) or
            ``"neutral"`` (count it as neutral: low arousal, no valence).

    Raises:
        MediaNotFoundError: ``folder`` does not exist.
        ConfigError: ``boredom`` is neither choice.
    """
    if boredom not in ("drop", "neutral"):
        raise ConfigError(f"load_emodb: boredom must be 'drop' or 'neutral', got {boredom!r}")
    root = _folder(folder, "EMO-DB")
    items = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in _MEDIA_EXT:
            continue
        m = _EMODB_RE.match(p.stem)
        if not m:
            continue
        speaker, text, letter, _version = m.groups()
        label = _EMODB_MAP.get(letter) or ("neutral" if boredom == "neutral" else None)
        if label is None:
            continue
        items.append(
            LabeledItem(path=str(p), label=label, speaker=speaker, transcript=_EMODB_TEXT.get(text), dataset="emodb")
        )
    return items


# ------------------------------------------------------------------ CREMA-D

_CREMA_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_CREMA_EMO = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA_VOTE = {"A": "angry", "D": "disgust", "F": "fearful", "H": "happy", "N": "neutral", "S": "sad"}
_CREMA_TEXT = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}


def load_crema_d(
    table: str | os.PathLike[str],
    *,
    media_dir: str | os.PathLike[str] | None = None,
    label_source: Literal["acted", "VoiceVote", "FaceVote", "MultiModalVote"] = "acted",
    extensions: tuple[str, ...] = (".wav", ".mp4", ".flv", ".mp3"),
) -> list[LabeledItem]:
    """CREMA-D style tables: one clip per row, named ``AAAA_SSS_EEE_LL``.

    The table needs a ``FileName`` or ``Filename`` column (``summaryTable.csv``,
    ``SentenceFilenames.csv``). The label is the acted emotion of the name, or
    the crowd's majority vote of one column (``label_source``; rows whose vote
    is a tie such as ``A:D`` are dropped).

    Args:
        table: the CSV.
        media_dir: folder of the clips; each row's path is the first existing
            ``media_dir/<name><ext>`` over ``extensions``, and rows without a clip
            are dropped. None: keep every row with ``path=None`` (labels only).
        label_source: ``"acted"`` or a vote column.
        extensions: media extensions to try, in order.

    Raises:
        MediaNotFoundError: the table does not exist.
        ConfigError: no file-name column, or an unknown ``label_source``.
    """
    if label_source not in ("acted", "VoiceVote", "FaceVote", "MultiModalVote"):
        raise ConfigError(f"load_crema_d: unknown label_source {label_source!r}")
    path = _folder(table, "CREMA-D")
    media = Path(media_dir) if media_dir is not None else None
    items = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        name_col = next((c for c in ("FileName", "Filename", "file", "path") if c in fields), None)
        if name_col is None:
            raise ConfigError(f"CREMA-D: {path} has no FileName/Filename column (columns: {fields})")
        if label_source != "acted" and label_source not in fields:
            raise ConfigError(f"CREMA-D: {path} has no {label_source} column")
        for row in reader:
            stem = Path(row[name_col].strip()).stem
            m = _CREMA_RE.match(stem)
            if not m:
                continue
            actor, sentence, emo, level = m.groups()
            if label_source == "acted":
                label = _CREMA_EMO.get(emo)
            else:
                label = _CREMA_VOTE.get(row[label_source].strip())
            if label is None:
                continue
            clip: str | None = None
            if media is not None:
                clip = next((str(media / (stem + e)) for e in extensions if (media / (stem + e)).exists()), None)
                if clip is None:
                    continue
            items.append(
                LabeledItem(
                    path=clip,
                    label=label,
                    speaker=actor,
                    transcript=_CREMA_TEXT.get(sentence),
                    dataset="crema_d",
                    intensity=level,
                )
            )
    return items


# ------------------------------------------------------------------ faces (shared/data/faces)


def load_faces(folder: str | os.PathLike[str], *, agreeing_only: bool = False) -> list[LabeledItem]:
    """The still face photos of ``shared/data/faces`` (its ``manifest.csv``).

    Args:
        folder: the ``faces`` folder.
        agreeing_only: drop the Taiwanese rows whose observers' majority label
            (``rated_label``) differs from the posed label.

    Returns:
        Items with speaker = the subject (``"JAFFE KA"``, ``"TW 01"``...) and
        dataset = ``jaffe`` or ``taiwanese_performers``.

    Raises:
        MediaNotFoundError: the folder or its manifest does not exist.
    """
    root = _folder(folder, "faces")
    manifest = _folder(root / "manifest.csv", "faces manifest")
    items = []
    with open(manifest, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label = normalize_label(row["emotion"])
            if label is None:
                continue
            rated = row.get("rated_label", "").strip()
            if agreeing_only and rated and normalize_label(rated) != label:
                continue
            items.append(
                LabeledItem(path=str(root / row["file"]), label=label, speaker=row["subject"], dataset=row["dataset"])
            )
    return items


# ------------------------------------------------------------------ generic manifest


def load_manifest(csv_path: str | os.PathLike[str]) -> list[LabeledItem]:
    """A generic CSV manifest: ``path,label[,transcript]`` (optionally ``speaker``).

    A header row naming the columns is optional; without one the columns are
    taken in that order. Relative paths are relative to the CSV's folder. Labels
    are normalised with :func:`normalize_label` (RAVDESS ``calm`` -> neutral, MELD
    ``joy`` -> happy...). Empty lines and lines starting with ``#`` are skipped.

    Raises:
        MediaNotFoundError: the CSV does not exist.
        ConfigError: a row has fewer than 2 columns, or a label outside the classes
            (the message names the line); or the manifest has no rows.
    """
    path = _folder(csv_path, "manifest")
    base = path.parent
    items = []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ConfigError(f"manifest {path}: no rows")
    header = [c.strip().lower() for c in rows[0]]
    if "path" in header and "label" in header:
        cols = {name: header.index(name) for name in ("path", "label", "transcript", "speaker") if name in header}
        body = rows[1:]
        first_line = 2
    else:
        cols = {"path": 0, "label": 1, "transcript": 2}
        body = rows
        first_line = 1
    for n, row in enumerate(body, start=first_line):
        if len(row) <= max(cols["path"], cols["label"]):
            raise ConfigError(f"manifest {path} line {n}: need at least path,label, got {row!r}")
        raw = row[cols["label"]]
        label = normalize_label(raw)
        if label is None:
            raise ConfigError(f"manifest {path} line {n}: label {raw!r} is not one of {', '.join(CLASSES)}")
        p = Path(row[cols["path"]].strip())
        if not p.is_absolute():
            p = base / p
        transcript = None
        if "transcript" in cols and cols["transcript"] < len(row) and row[cols["transcript"]].strip():
            transcript = row[cols["transcript"]].strip()
        speaker = row[cols["speaker"]].strip() if "speaker" in cols and cols["speaker"] < len(row) else ""
        items.append(LabeledItem(path=str(p), label=label, speaker=speaker, transcript=transcript, dataset="manifest"))
    if not items:
        raise ConfigError(f"manifest {path}: no rows")
    return items
