"""Dataset loaders: labels from file names and tables, mapped onto the 7 classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamline.errors import ConfigError, MediaNotFoundError
from streamline.fusion.datasets import (
    load_crema_d,
    load_emodb,
    load_manifest,
    load_mead,
    load_meld,
    load_ravdess,
    normalize_label,
)


def _touch(folder: Path, *names: str) -> None:
    for n in names:
        p = folder / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def test_ravdess_names_calm_is_neutral_and_song_is_skipped(tmp_path: Path) -> None:
    _touch(tmp_path, "Actor_01/03-01-02-02-01-01-01.wav", "Actor_02/03-01-08-01-02-02-02.flac",
           "Actor_02/03-02-03-01-01-01-02.wav", "Actor_02/readme.wav", "Actor_03/03-01-09-01-01-01-03.wav")
    items = load_ravdess(tmp_path)
    assert [(i.label, i.speaker, i.intensity) for i in items] == [("neutral", "01", "strong"), ("surprised", "02", "normal")]
    assert items[1].transcript == "Dogs are sitting by the door"
    assert len(load_ravdess(tmp_path, speech_only=False)) == 3


def test_mead_names(tmp_path: Path) -> None:
    _touch(tmp_path, "M030_front_angry_level3_001.mp4", "W009_front_contempt_level3_001.mp4", "M030_sad_3_001.mp4",
           "fear.mp4", "M030_disgusted.m4a", "notes.txt")
    got = {(Path(i.path or "").name, i.label, i.speaker) for i in load_mead(tmp_path)}
    assert got == {
        ("M030_front_angry_level3_001.mp4", "angry", "M030"),
        ("M030_sad_3_001.mp4", "sad", "M030"),
        ("fear.mp4", "fearful", ""),
        ("M030_disgusted.m4a", "disgust", "M030"),
    }


def test_meld_mapping(tmp_path: Path) -> None:
    csv = tmp_path / "dev.csv"
    csv.write_text(
        "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
        '1,Oh my God!,Rachel,surprise,positive,0,0,1,1,"00:00:01,000","00:00:02,000"\n'
        "2,I\u2019m so happy,Monica,joy,positive,0,1,1,1,a,b\n"
        "3,Go away,Ross,anger,negative,1,0,1,1,a,b\n"
        "4,meh,Joey,neutral,neutral,1,1,1,1,a,b\n"
        "5,ew,Joey,disgust,negative,1,2,1,1,a,b\n"
        "6,no,Joey,sadness,negative,1,3,1,1,a,b\n"
        "7,help,Joey,fear,negative,1,4,1,1,a,b\n",
        encoding="utf-8",
    )
    items = load_meld(csv)
    assert [i.label for i in items] == ["surprised", "happy", "angry", "neutral", "disgust", "sad", "fearful"]
    assert items[1].transcript == "I'm so happy" and items[2].group == "1" and items[0].path is None


def test_meld_bad_columns(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="lacks the columns"):
        load_meld(tmp_path / "x.csv")


def test_emodb_letters_and_boredom(tmp_path: Path) -> None:
    _touch(tmp_path, "03a01Wa.wav", "03a04Lc.wav", "03a01Fa.wav", "03b10Ec.wav", "03a04Ad.wav", "03a02Ta.wav", "03a01Nc.wav")
    items = load_emodb(tmp_path)
    assert sorted(i.label for i in items) == sorted(["angry", "happy", "disgust", "fearful", "sad", "neutral"])
    assert {i.speaker for i in items} == {"03"}
    assert sorted(i.label for i in load_emodb(tmp_path, boredom="neutral")).count("neutral") == 2
    with pytest.raises(ConfigError):
        load_emodb(tmp_path, boredom="sad")  # type: ignore[arg-type]


def test_crema_d_tables(tmp_path: Path) -> None:
    table = tmp_path / "summary.csv"
    table.write_text(
        '"","FileName","VoiceVote","VoiceLevel"\n'
        '"1","1001_IEO_NEU_XX","N","69"\n'
        '"2","1001_IEO_HAP_LO","N","71"\n'
        '"3","1002_DFA_ANG_HI","A:D","50"\n'
    )
    acted = load_crema_d(table)
    assert [(i.label, i.speaker, i.transcript) for i in acted] == [
        ("neutral", "1001", "It's eleven o'clock"), ("happy", "1001", "It's eleven o'clock"), ("angry", "1002", "Don't forget a jacket")
    ]
    voted = load_crema_d(table, label_source="VoiceVote")
    assert [i.label for i in voted] == ["neutral", "neutral"]  # the tie A:D is dropped
    media = tmp_path / "AudioWAV"
    _touch(media, "1001_IEO_HAP_LO.wav")
    with_media = load_crema_d(table, media_dir=media)
    assert [Path(i.path or "").name for i in with_media] == ["1001_IEO_HAP_LO.wav"]


def test_manifest_with_and_without_header(tmp_path: Path) -> None:
    (tmp_path / "m1.csv").write_text("path,label,transcript\na.wav,calm,hello there\n/abs/b.mp4,Joy,\n")
    items = load_manifest(tmp_path / "m1.csv")
    assert [(i.path, i.label, i.transcript) for i in items] == [
        (str(tmp_path / "a.wav"), "neutral", "hello there"), ("/abs/b.mp4", "happy", None)
    ]
    (tmp_path / "m2.csv").write_text("# comment\nc.wav,sad\n")
    assert [i.label for i in load_manifest(tmp_path / "m2.csv")] == ["sad"]


def test_manifest_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("path,label\na.wav,sad\nb.wav,contempt\n")
    with pytest.raises(ConfigError, match="line 3.*contempt"):
        load_manifest(tmp_path / "bad.csv")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(ConfigError, match="no rows"):
        load_manifest(tmp_path / "empty.csv")
    with pytest.raises(MediaNotFoundError):
        load_manifest(tmp_path / "missing.csv")


def test_normalize_label() -> None:
    assert normalize_label(" Surprise ") == "surprised"
    assert normalize_label("calm") == "neutral"
    assert normalize_label("contempt") is None and normalize_label("boredom") is None
