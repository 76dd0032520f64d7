"""Text encoders: wordllama from the weights its wheel ships, and the sentence-transformers adapter
on a tiny self-built model (a 2-layer BERT of width 32 with a WordPiece vocabulary of a few words,
random weights), saved the way sentence-transformers saves models on the Hub.

The sentence-transformers tests skip without the ``text`` extra (``pip install -e '.[text]'``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from encore.encoders.base import EncoderUnavailable
from encore.encoders.text import (
    TEXT_ENCODERS,
    SentenceTransformerEncoder,
    TextEncoder,
    WordLlamaEncoder,
    describe_text_encoder,
    get_text_encoder,
)

#: The tiny model's width.
DIM = 32
WORDS = ["calm piano music", "loud rock guitar with drums", "soft jazz trio at night", "happy dance party"]


@pytest.fixture(scope="module")
def wordllama() -> WordLlamaEncoder:
    return WordLlamaEncoder()


def test_importing_text_encoders_loads_no_model_library() -> None:
    code = (
        "import sys, encore.encoders.text as t\n"
        "t.get_text_encoder('wordllama'); t.get_text_encoder('sentence-transformers', path='/nowhere')\n"
        "loaded = [m for m in ('torch', 'transformers', 'sentence_transformers', 'wordllama') if m in sys.modules]\n"
        "sys.exit(f'imported {loaded}' if loaded else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_registry_describes_without_loading() -> None:
    assert sorted(TEXT_ENCODERS) == ["sentence-transformers", "wordllama"]
    desc = describe_text_encoder()
    assert desc is TEXT_ENCODERS["wordllama"] and desc.dim == 256
    enc = get_text_encoder("wordllama")
    assert isinstance(enc, TextEncoder) and isinstance(enc, WordLlamaEncoder)
    assert enc.description is desc and not enc.loaded
    assert get_text_encoder("wordllama", dim=64).description.dim == 64


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown text encoder 'bert'; known text encoders: sentence-transformers, wordllama"):
        get_text_encoder("bert")
    with pytest.raises(ValueError, match="unknown text encoder"):
        describe_text_encoder("bert")


def test_wordllama_loads_from_the_wheel_with_no_network(tmp_path: Path) -> None:
    # A fresh HOME has no ~/.cache/wordllama, and every socket connection fails: the weights
    # and tokenizer can only come from the installed package, and nothing may be written.
    code = textwrap.dedent("""
        import socket, sys, time
        def refuse(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from encore.encoders.text import WordLlamaEncoder
        enc = WordLlamaEncoder()
        start = time.perf_counter()
        enc.load()
        x = enc.embed(["calm piano"])
        print(x.shape, round(time.perf_counter() - start, 3))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("(1, 256)")
    assert list(tmp_path.iterdir()) == []


def test_wordllama_embeds_unit_rows(wordllama: WordLlamaEncoder) -> None:
    x = wordllama.embed(["sad slow piano", "heavy guitar riffs"])
    assert wordllama.loaded
    assert x.shape == (2, 256) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_wordllama_is_deterministic_and_batch_independent(wordllama: WordLlamaEncoder) -> None:
    texts = ["sad slow piano", "heavy guitar riffs", "happy upbeat dance music"]
    batch = wordllama.embed(texts)
    np.testing.assert_array_equal(batch, wordllama.embed(texts))
    one_by_one = np.concatenate([wordllama.embed([t]) for t in texts])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-6)
    small_batches = WordLlamaEncoder(batch_size=2).embed(texts)
    np.testing.assert_allclose(batch, small_batches, atol=1e-6)


def test_wordllama_similarity_follows_meaning(wordllama: WordLlamaEncoder) -> None:
    sad, melancholy, metal = wordllama.embed(["sad song", "melancholy ballad", "heavy metal riffs"])
    assert sad @ melancholy > sad @ metal


def test_wordllama_empty_inputs(wordllama: WordLlamaEncoder) -> None:
    empty = wordllama.embed([])
    assert empty.shape == (0, 256) and empty.dtype == np.float32
    x = wordllama.embed(["", "rock"])
    assert not np.any(x[0]) and np.isfinite(x).all()
    assert np.linalg.norm(x[1]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(TypeError, match="sequence of texts"):
        wordllama.embed("rock")


def test_wordllama_truncated_dims_are_a_prefix(wordllama: WordLlamaEncoder) -> None:
    small = WordLlamaEncoder(dim=64).embed(["calm piano"])
    assert small.shape == (1, 64)
    full = wordllama.embed(["calm piano"])
    prefix = full[:, :64] / np.linalg.norm(full[:, :64])
    np.testing.assert_allclose(small, prefix, atol=1e-5)
    with pytest.raises(ValueError, match="dim must be one of"):
        WordLlamaEncoder(dim=100)


# --- sentence-transformers ---------------------------------------------------------------------


def build_model(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny sentence-transformers model directory (BERT, mean pooling) at ``path``."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    st = pytest.importorskip("sentence_transformers")
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models as modules

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted({w for line in WORDS for w in line.split()}))}
    wordpiece = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    wordpiece.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    wordpiece.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = transformers.BertTokenizerFast(tokenizer_object=wordpiece, unk_token="[UNK]", pad_token="[PAD]",
                                               cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                               model_max_length=32)
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=DIM, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=32)
    bert_dir = path.parent / f"{path.name}-bert"
    transformers.BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    model = st.SentenceTransformer(modules=[modules.Transformer(str(bert_dir)), modules.Pooling(DIM, "mean")], device="cpu")
    model.save(str(path))
    shutil.rmtree(bert_dir)
    return path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread, and the machine is shared."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def st_model(tmp_path_factory) -> Path:
    return build_model(tmp_path_factory.mktemp("st") / "tiny")


def test_sentence_transformer_loads_a_local_model(st_model: Path) -> None:
    enc = get_text_encoder("sentence-transformers", path=st_model, dim=DIM)
    assert isinstance(enc, SentenceTransformerEncoder) and not enc.loaded
    x = enc.embed(WORDS)
    assert enc.loaded
    assert x.shape == (len(WORDS), DIM) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # Different texts embed differently, and the same texts the same, alone or in a batch.
    assert np.all(np.abs(x @ x.T - np.eye(len(WORDS)))[~np.eye(len(WORDS), dtype=bool)] < 0.99999)
    np.testing.assert_allclose(enc.embed(WORDS[1:2])[0], x[1], atol=1e-5)
    assert enc.embed([]).shape == (0, DIM)


def test_sentence_transformer_matches_the_library(st_model: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    want = st.SentenceTransformer(str(st_model), device="cpu").encode(WORDS, normalize_embeddings=True)
    got = SentenceTransformerEncoder(st_model, dim=DIM).embed(WORDS)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_sentence_transformer_refuses_another_dimension(st_model: Path) -> None:
    with pytest.raises(EncoderUnavailable, match=f"embeds into {DIM} dimensions, not 384"):
        SentenceTransformerEncoder(st_model).load()


def test_sentence_transformer_missing_path(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    enc = SentenceTransformerEncoder(tmp_path / "nowhere")
    with pytest.raises(EncoderUnavailable, match="not a sentence-transformers model directory"):
        enc.embed(["calm piano"])
    assert not enc.loaded


def test_sentence_transformer_without_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EncoderUnavailable, match=r"needs sentence_transformers; install the extra with: pip install -e '\.\[text\]'"):
        SentenceTransformerEncoder(tmp_path).load()
