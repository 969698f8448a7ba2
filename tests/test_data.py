"""tinylm.data: dataset resolver, cleaning, vocabularies, tokenizers, batching. No network:
downloads are monkeypatched or read file:// URLs."""

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy
import pytest

from tinylm.data import (DATASETS, CharTokenizer, DatasetChecksumError, DatasetEncodingError,
                         DatasetFile, RandomWindowBatcher, SequentialBatcher, Vocabulary,
                         WordTokenizer, dataset_path, deduplicate_lines, iterate_eval_windows,
                         letters_only, load_text, load_tokenizer, normalize_unicode,
                         normalize_whitespace, split_train_val, tokenizer_from_dict)
from tinylm.data import datasets as datasets_module
from tinylm.data import verify as verify_module


def _shared_text(name):
    try:
        return load_text(name, download_missing=False)
    except FileNotFoundError as error:
        pytest.skip(f"dataset {name!r} is not available offline: {error}")


# -- dataset resolver ------------------------------------------------------------------------------
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty data dir, an empty cache, no shared/data, and a download that must not run."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv("TINYLM_DATA_DIR", str(data))
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(cache))
    monkeypatch.setattr(datasets_module, "shared_data_dirs", lambda: [])

    def no_network(url, destination, member=None):
        raise OSError("network disabled in tests")
    monkeypatch.setattr(datasets_module, "download", no_network)
    return data, cache


def _fake_dataset(monkeypatch, payload: bytes, url="https://example.invalid/toy.txt", member=None):
    info = DatasetFile("toy/toy.txt", hashlib.sha256(payload).hexdigest(), url, member=member)
    monkeypatch.setitem(DATASETS, "toy", info)
    return info


def _place(folder: Path, info: DatasetFile, payload: bytes) -> Path:
    """Write ``payload`` where ``info`` says the file lives inside ``folder``."""
    path = folder / info.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


@pytest.fixture
def hashed(monkeypatch):
    """The paths hashed so far: the hashing function still runs, and each call is logged."""
    calls = []
    real_sha256_of = verify_module.sha256_of

    def logged(path):
        calls.append(Path(path))
        return real_sha256_of(path)
    monkeypatch.setattr(verify_module, "sha256_of", logged)
    return calls


def test_env_dir_beats_shared(isolated, tmp_path, monkeypatch):
    data, _ = isolated
    shared = tmp_path / "shared" / "data"
    info = _fake_dataset(monkeypatch, b"the same verified bytes\n")
    for root in (data, shared):
        _place(root, info, b"the same verified bytes\n")
    monkeypatch.setattr(datasets_module, "shared_data_dirs", lambda: [shared])
    assert dataset_path("toy") == data / info.path
    monkeypatch.delenv("TINYLM_DATA_DIR")
    assert dataset_path("toy") == shared / info.path


def test_shared_dirs_found_beside_the_project_and_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "project" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "project" / "sub")
    assert (tmp_path / "shared" / "data").resolve() in datasets_module.shared_data_dirs()


def test_missing_dataset_names_the_dataset_places_url_and_fix(isolated):
    data, cache = isolated
    with pytest.raises(FileNotFoundError) as info:
        dataset_path("ptb.valid")
    message = str(info.value)
    for needle in ("'ptb.valid'", DATASETS["ptb.valid"].url, str(data), str(cache),
                   "TINYLM_DATA_DIR", "downloading it failed"):
        assert needle in message
    with pytest.raises(FileNotFoundError, match="downloading was not allowed"):
        dataset_path("ptb.valid", download_missing=False)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(KeyError, match="tinyshakespeare"):
        dataset_path("no-such-corpus")


def test_download_into_cache_is_verified(isolated, monkeypatch):
    _, cache = isolated
    info = _fake_dataset(monkeypatch, b"good bytes\n")
    monkeypatch.setattr(datasets_module, "download",
                        lambda url, dest, member=None: dest.parent.mkdir(parents=True) or
                        dest.write_bytes(b"good bytes\n"))
    assert dataset_path("toy") == cache / info.path
    assert load_text("toy") == "good bytes\n"


def test_sha256_mismatch_in_cache_deletes_and_raises(isolated, monkeypatch):
    _, cache = isolated
    info = _fake_dataset(monkeypatch, b"good bytes\n")
    monkeypatch.setattr(datasets_module, "download",
                        lambda url, dest, member=None: dest.parent.mkdir(parents=True) or
                        dest.write_bytes(b"tampered\n"))
    with pytest.raises(ValueError, match="sha256") as error:
        dataset_path("toy")
    assert info.url in str(error.value)
    assert not (cache / info.path).exists()


def test_real_download_code_reads_file_urls_and_zip_members(tmp_path, monkeypatch):
    payload = "zipped text ✓\n".encode()
    archive = tmp_path / "toy.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inner/toy.txt", payload)
        z.writestr("inner/other.txt", b"x")
    _fake_dataset(monkeypatch, payload, url=archive.as_uri(), member="inner/toy.txt")
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYLM_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets_module, "shared_data_dirs", lambda: [])
    assert load_text("toy") == "zipped text ✓\n"
    assert not list((tmp_path / "cache" / "toy").glob("tmp*"))   # no temporary file left


def test_table_covers_every_shared_file():
    sums = Path(datasets_module.__file__).resolve().parents[3] / "shared" / "data" / "SHA256SUMS"
    if not sums.exists():
        pytest.skip(f"{sums} is not present (shared/data lives beside the project)")
    listed = {(path.strip(), sha) for sha, path in
              (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())}
    table = {(info.path, info.sha256) for info in DATASETS.values()}
    assert listed == table



def test_load_text_decodes_with_the_table_encoding(tmp_path, monkeypatch):
    """MR is latin-1: ``load_text`` must decode it so, not fail as UTF-8 would. Line endings
    come out as ``\\n``, as ``Path.read_text`` gave them."""
    payload = "a caf\u00e9 r\u00e9sum\u00e9\r\nnext\n".encode("latin-1")
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.txt").write_bytes(payload)
    monkeypatch.setitem(DATASETS, "toy", DatasetFile(
        "toy/toy.txt", hashlib.sha256(payload).hexdigest(), "file:///nowhere", encoding="latin-1"))
    monkeypatch.setenv("TINYLM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    assert load_text("toy") == "a caf\u00e9 r\u00e9sum\u00e9\nnext\n"
    assert DATASETS["mr.pos"].encoding == DATASETS["mr.neg"].encoding == "latin-1"


# -- local files are verified ----------------------------------------------------------------------
GOOD = b"".join(b"line %d of the verified toy corpus\n" % i for i in range(300))


@pytest.fixture
def toy_folder(request, isolated, tmp_path, monkeypatch):
    """(info, folder) with ``toy`` registered as GOOD; the folder is the data dir, a shared
    data folder or the download cache, as the test's ``where`` parameter says."""
    data, cache = isolated
    folders = {"env": data, "shared": tmp_path / "shared" / "data", "cache": cache}
    monkeypatch.setattr(datasets_module, "shared_data_dirs", lambda: [folders["shared"]])
    return _fake_dataset(monkeypatch, GOOD), folders[request.param]


def _record(cache: Path) -> dict:
    return json.loads((cache / "verified.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("toy_folder", ["env", "shared"], indirect=True)
def test_corrupted_local_file_is_named_with_both_hashes_and_kept(toy_folder):
    info, folder = toy_folder
    corrupt = GOOD.replace(b"line 7 ", b"line 8 ")
    path = _place(folder, info, corrupt)
    with pytest.raises(DatasetChecksumError) as error:
        load_text("toy")
    message = str(error.value)
    for needle in ("'toy'", str(path), info.sha256, hashlib.sha256(corrupt).hexdigest(),
                   info.url, "SHA256SUMS", "Fix: restore it"):
        assert needle in message
    assert isinstance(error.value, ValueError)
    assert path.read_bytes() == corrupt                 # the user's file is never deleted


@pytest.mark.parametrize("toy_folder", ["env", "shared"], indirect=True)
def test_truncated_local_file_is_caught(toy_folder):
    info, folder = toy_folder
    path = _place(folder, info, GOOD[:len(GOOD) // 2])
    with pytest.raises(DatasetChecksumError, match=f"{len(GOOD) // 2} bytes"):
        dataset_path("toy", download_missing=False)
    assert path.exists()


@pytest.mark.parametrize("toy_folder", ["env", "shared", "cache"], indirect=True)
def test_second_lookup_does_not_rehash(toy_folder, isolated, hashed):
    info, folder = toy_folder
    _, cache = isolated
    path = _place(folder, info, GOOD)
    assert dataset_path("toy") == path and hashed == [path]
    assert dataset_path("toy") == path and load_text("toy") == GOOD.decode()
    assert hashed == [path]                               # the record answered twice
    stat = path.stat()
    assert _record(cache) == {str(path.resolve()): {
        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": info.sha256}}
    assert not list(cache.glob("verified.json.*"))        # no temporary file left behind


def _same_size_other_bytes(path: Path) -> None:
    """Change the contents but not the size; set the mtime one second later, since a rewrite
    within the file system's clock tick could keep the old one."""
    mtime_ns = path.stat().st_mtime_ns
    path.write_bytes(GOOD.replace(b"line 7 ", b"line 8 "))
    os.utime(path, ns=(mtime_ns, mtime_ns + 10**9))


@pytest.mark.parametrize("change", [
    lambda path: path.write_bytes(GOOD[:-1]),             # size changes
    lambda path: path.write_bytes(GOOD + b"appended\n"),
    _same_size_other_bytes,                               # only the mtime changes
], ids=["truncated", "appended", "same-size"])
@pytest.mark.parametrize("toy_folder", ["env"], indirect=True)
def test_file_changed_after_caching_is_rehashed_and_caught(toy_folder, isolated, hashed, change):
    info, folder = toy_folder
    _, cache = isolated
    path = _place(folder, info, GOOD)
    dataset_path("toy")
    change(path)
    with pytest.raises(DatasetChecksumError, match=hashlib.sha256(path.read_bytes()).hexdigest()):
        dataset_path("toy")
    assert hashed == [path, path]
    assert _record(cache) == {}                           # the stale entry is dropped


@pytest.mark.parametrize("toy_folder", ["env"], indirect=True)
def test_record_counts_only_for_the_expected_sha256(toy_folder, monkeypatch, hashed):
    """An unchanged file is hashed again when the table now expects other bytes."""
    info, folder = toy_folder
    _place(folder, info, GOOD)
    dataset_path("toy")
    monkeypatch.setitem(DATASETS, "toy", DatasetFile(info.path, "0" * 64, info.url))
    with pytest.raises(DatasetChecksumError, match="expected 0000"):
        dataset_path("toy")
    assert len(hashed) == 2


@pytest.mark.parametrize("contents", [
    b"", b"{not json", b"[1, 2]", b"\xff\xfe{}", b'{"/some/file": NaN}', b"[" * 100_000,
    "{KEY: 3}", "{KEY: {\"size\": -1, \"mtime_ns\": 0, \"sha256\": \"\"}}",
], ids=["empty", "not-json", "not-an-object", "not-utf8", "nan", "too-deep", "entry-not-an-object",
        "stale-entry"])
@pytest.mark.parametrize("toy_folder", ["env"], indirect=True)
def test_malformed_record_is_rebuilt(toy_folder, isolated, hashed, contents):
    info, folder = toy_folder
    _, cache = isolated
    path = _place(folder, info, GOOD)
    if isinstance(contents, str):                         # an entry for this very file
        contents = contents.replace("KEY", json.dumps(str(path.resolve()))).encode()
    cache.mkdir()
    (cache / "verified.json").write_bytes(contents)
    assert dataset_path("toy") == path and hashed == [path]
    assert list(_record(cache)) == [str(path.resolve())]  # a fresh, strict-JSON record
    dataset_path("toy")
    assert hashed == [path]


@pytest.mark.parametrize("toy_folder", ["env"], indirect=True)
def test_unwritable_cache_dir_still_verifies(toy_folder, tmp_path, monkeypatch, hashed):
    """A cache folder below a plain file can be neither created nor written (even by root)."""
    info, folder = toy_folder
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    path = _place(folder, info, GOOD)
    assert dataset_path("toy") == path
    assert dataset_path("toy") == path and len(hashed) == 2   # nothing recorded: hashed again
    path.write_bytes(GOOD[:10])
    with pytest.raises(DatasetChecksumError):
        dataset_path("toy")


@pytest.mark.parametrize("kind", ["missing", "a-file"])
def test_data_dir_that_is_not_a_folder_is_an_error(isolated, tmp_path, monkeypatch, kind):
    value = tmp_path / kind
    if kind == "a-file":
        value.write_text("")
    monkeypatch.setenv("TINYLM_DATA_DIR", str(value))
    with pytest.raises(NotADirectoryError) as error:
        dataset_path("ptb.valid", download_missing=False)
    for needle in (f"TINYLM_DATA_DIR={str(value)!r}", "not an existing folder", "create",
                   "unset TINYLM_DATA_DIR"):
        assert needle in str(error.value)
    monkeypatch.setenv("TINYLM_DATA_DIR", "")             # empty counts as unset
    with pytest.raises(FileNotFoundError, match="downloading was not allowed"):
        dataset_path("ptb.valid", download_missing=False)


@pytest.mark.parametrize("toy_folder", ["env"], indirect=True)
def test_invalid_bytes_name_the_file_offset_and_encoding(toy_folder, monkeypatch):
    """The offset is in the file, past the first read buffer, not within one buffer."""
    info, folder = toy_folder
    payload = b"x" * 9000 + b"\nabc\xffdef\n"
    info = _fake_dataset(monkeypatch, payload)
    path = _place(folder, info, payload)
    with pytest.raises(DatasetEncodingError) as error:
        load_text("toy")
    message = str(error.value)
    for needle in ("'toy'", str(path), "byte offset 9004", "line 2", "utf-8", "b'\\xff'",
                   "Fix: declare", "encoding="):
        assert needle in message
    assert isinstance(error.value, ValueError)
    assert isinstance(error.value.__cause__, UnicodeDecodeError)


# -- cleaning --------------------------------------------------------------------------------------
def test_cleaning_functions():
    assert normalize_unicode("Ａ１", "NFKC") == "A1"
    assert normalize_unicode("e\u0301") == "\u00e9"
    with pytest.raises(ValueError, match="normal form"):
        normalize_unicode("x", "NFX")
    assert normalize_whitespace("a \t b  \r\nc  ") == "a b\nc"
    assert letters_only("The Time-Machine, 1898!\nOK") == "the time machine\nok"
    assert deduplicate_lines("a\nb\na\n\n\nb\nc") == "a\nb\n\n\nc"


# -- vocabularies and tokenizers ------------------------------------------------------------
def test_vocabulary_rejects_duplicates_and_orders_deterministically():
    with pytest.raises(ValueError, match="apple"):
        Vocabulary(["apple", "dog", "apple"])
    from collections import Counter
    vocab = Vocabulary.from_counts(Counter("b a c a b d".split()), min_freq=1, specials=["<unk>"])
    assert vocab.tokens == ["<unk>", "a", "b", "c", "d"]     # by count, ties alphabetical


def test_char_tokenizer_round_trip_and_sorted_vocabulary():
    text = "hello world!\nHi."
    tok = CharTokenizer.from_text(text)
    assert tok.chars == sorted(set(text)) and tok.vocab_size == len(set(text))
    ids = tok.encode(text)
    assert ids.dtype == numpy.int64 and len(ids) == len(text)
    assert tok.decode(ids) == text and tok.decode(list(ids)) == text
    assert [tok.id_to_token(i) for i in ids[:5]] == list("hello")
    assert tok.token_to_id("h") == ids[0]
    assert tok.encode("").size == 0


def test_char_tokenizer_handles_non_ascii():
    text = "床前明月光，疑是地上霜。"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text


def test_char_tokenizer_unknown_character_is_an_error_unless_unk():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"'z'.*position 2"):
        tok.encode("abz")
    with_unk = CharTokenizer.from_text("abc", unk="<unk>")
    ids = with_unk.encode("abz")
    assert ids[2] == with_unk.token_to_id("<unk>") == 0
    assert with_unk.decode(ids) == "ab<unk>"


def test_decoding_an_out_of_range_id_is_an_error():
    with pytest.raises(ValueError, match="id 7"):
        CharTokenizer.from_text("abc").decode([0, 7])


@pytest.mark.parametrize("build", [CharTokenizer.from_text, WordTokenizer.from_text])
def test_empty_corpus_is_an_error(build):
    for text in ("", " \n\t"):
        with pytest.raises(ValueError, match="corpus is empty"):
            build(text)


def test_word_tokenizer_vocabulary_min_freq_and_eos():
    text = "the cat sat\nthe dog sat\nthe end\n"
    tok = WordTokenizer.from_text(text, min_freq=2)
    assert tok.vocab.tokens == ["<unk>", "<eos>", "the", "sat"]
    assert tok.split("the cat") == ["the", "cat", "<eos>"]
    ids = tok.encode(text)
    assert tok.decode(ids) == "the <unk> sat\nthe <unk> sat\nthe <unk>\n"
    assert list(tok.encode(tok.decode(ids))) == list(ids)


def test_word_tokenizer_options():
    tok = WordTokenizer.from_text("Hello, world. Hello!", lower=True, eos=None,
                                  pattern=r"\w+|[^\w\s]")
    assert tok.split("HELLO, world!") == ["hello", ",", "world", "!"]
    assert tok.decode(tok.encode("hello world")) == "hello world"
    strict = WordTokenizer.from_text("a b", specials=(), eos=None)
    with pytest.raises(ValueError, match="'c'"):
        strict.encode("a c")
    with pytest.raises(ValueError, match="<unk>"):
        WordTokenizer.from_text("a a b", min_freq=2, specials=())


def test_ptb_unk_in_text_is_the_special():
    tok = WordTokenizer.from_text("a <unk> b\n<unk> a\n")
    assert tok.vocab.tokens[:2] == ["<unk>", "<eos>"]
    assert tok.encode("<unk> zebra")[:2].tolist() == [0, 0]


@pytest.mark.parametrize("tok", [
    CharTokenizer.from_text("to be or not to be"),
    CharTokenizer.from_text("abc", unk="<unk>"),
    WordTokenizer.from_text("to be or not\nto be", min_freq=2, lower=True),
    WordTokenizer.from_text("x, y", eos=None, pattern=r"\w+|[^\w\s]"),
])
def test_save_and_load_round_trip(tmp_path, tok):
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tok) and loaded.to_dict() == tok.to_dict()
    assert json.loads(path.read_text(encoding="utf-8"))["type"] == tok.type_name
    sample = "to be or not to be" if "t" in tok.vocab else "x, y"
    assert loaded.encode(sample).tolist() == tok.encode(sample).tolist()


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_tokenizer(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="unknown tokenizer type 'sentencepiece'"):
        tokenizer_from_dict({"type": "sentencepiece"})


def test_tiny_shakespeare_matches_nanogpt():
    text = _shared_text("tinyshakespeare")
    tok = CharTokenizer.from_text(text)
    assert tok.vocab_size == 65                                   # nanoGPT shakespeare_char
    train, val = split_train_val(tok.encode(text), 0.1)
    assert (len(train), len(val)) == (1003854, 111540)
    assert train[:5].tolist() == [18, 47, 56, 57, 58]            # "First"


def test_ptb_word_level_matches_the_standard_counts():
    train = _shared_text("ptb.train")
    tok = WordTokenizer.from_text(train)
    assert tok.vocab_size == 10000
    assert len(tok.encode(train)) == 929589
    assert len(tok.encode(_shared_text("ptb.valid"))) == 73760


# -- batching -------------------------------------------------------------------------------------
def test_split_train_val():
    train, val = split_train_val(numpy.arange(100), 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    with pytest.raises(ValueError, match="validation tokens"):
        split_train_val(numpy.arange(10), 0.05)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_train_val(numpy.arange(10), 1.0)


def test_random_windows_shapes_and_shift():
    ids = numpy.arange(1000)
    x, y, _ = RandomWindowBatcher(ids, batch_size=8, block_size=16, seed=0).next_batch()
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == numpy.int64
    assert (numpy.diff(x, axis=1) == 1).all()          # contiguous windows of the stream
    assert (y == x + 1).all()                          # targets: the next token
    assert x.min() >= 0 and y.max() <= 999


def test_random_windows_on_the_shortest_stream():
    batcher = RandomWindowBatcher(numpy.arange(6), batch_size=200, block_size=5, seed=1)
    x, y, _ = batcher.next_batch()
    assert x[:, 0].tolist() == [0] * 200 and y[0].tolist() == [1, 2, 3, 4, 5]


def test_random_windows_are_seeded_and_resume_exactly():
    ids = numpy.arange(500)
    a, b = (RandomWindowBatcher(ids, 4, 8, seed=7) for _ in range(2))
    assert all((a.next_batch()[0] == b.next_batch()[0]).all() for _ in range(3))
    other = RandomWindowBatcher(ids, 4, 8, seed=8)
    assert not (other.next_batch()[0] == a.next_batch()[0]).all()
    state = json.loads(json.dumps(a.state_dict()))
    expected = [a.next_batch()[0] for _ in range(5)]
    resumed = RandomWindowBatcher(ids, 4, 8, seed=123)
    resumed.load_state_dict(state)
    assert all((resumed.next_batch()[0] == e).all() for e in expected)
    with pytest.raises(ValueError, match="block_size saved 8 vs now 9"):
        RandomWindowBatcher(ids, 4, 9).load_state_dict(state)


def test_random_windows_need_block_size_plus_one_tokens():
    with pytest.raises(ValueError, match="at least 11 tokens.*has 10"):
        RandomWindowBatcher(numpy.arange(10), 2, 10)
    RandomWindowBatcher(numpy.arange(11), 2, 10).next_batch()


def test_sequential_batches_cover_the_stream_in_order():
    ids = numpy.arange(103)
    batcher = SequentialBatcher(ids, batch_size=4, num_steps=6)      # rows of 25 tokens
    assert batcher.steps_per_epoch == 4                               # (25 - 1) // 6
    seen_x, flags = [], []
    for _ in range(batcher.steps_per_epoch):
        x, y, new_epoch = batcher.next_batch()
        assert x.shape == (4, 6) and (y == x + 1).all()
        seen_x.append(x)
        flags.append(new_epoch)
    rows = numpy.concatenate(seen_x, axis=1)
    assert (rows == numpy.arange(100).reshape(4, 25)[:, :24]).all()
    assert flags == [True, False, False, False] and batcher.epoch == 0
    x, _, new_epoch = batcher.next_batch()
    assert new_epoch and batcher.epoch == 1 and (x == seen_x[0]).all()


def test_sequential_batcher_resumes_exactly():
    ids = numpy.arange(200)
    a = SequentialBatcher(ids, 3, 5)
    for _ in range(17):
        a.next_batch()
    state = json.loads(json.dumps(a.state_dict()))
    expected = [a.next_batch() for _ in range(20)]
    b = SequentialBatcher(ids, 3, 5)
    b.load_state_dict(state)
    for x, y, flag in expected:
        bx, by, bflag = b.next_batch()
        assert (bx == x).all() and (by == y).all() and bflag == flag
    assert b.epoch == a.epoch


def test_sequential_batcher_too_short():
    with pytest.raises(ValueError, match="at least 28 tokens"):
        SequentialBatcher(numpy.arange(20), batch_size=4, num_steps=6)


@pytest.mark.parametrize("n, batch_size, block_size", [(101, 4, 7), (50, 3, 100), (5, 8, 2),
                                                       (2, 1, 1), (64, 1, 8)])
def test_eval_windows_score_every_target_once(n, batch_size, block_size):
    ids = numpy.arange(n)
    inputs = []
    for x, y in iterate_eval_windows(ids, batch_size, block_size):
        assert x.shape == y.shape and x.shape[1] <= block_size and (y == x + 1).all()
        inputs.append(x.ravel())
    assert sorted(numpy.concatenate(inputs).tolist()) == list(range(n - 1))


def test_eval_windows_continue_row_by_row():
    windows = list(iterate_eval_windows(numpy.arange(41), batch_size=4, block_size=4))
    (x0, _), (x1, _), (x2, _) = windows[:3]              # rows of 10 pairs: widths 4, 4, 2
    assert x0.shape == (4, 4) and x2.shape == (4, 2)
    assert (x1[:, 0] == x0[:, -1] + 1).all() and x0[:, 0].tolist() == [0, 10, 20, 30]
    with pytest.raises(ValueError, match="at least 2 tokens"):
        list(iterate_eval_windows(numpy.arange(1), 2, 2))
