"""Tang quatrains: the form checker, the split by poem, the corpus builder on tiny JSON files
the tests write (registered in place of the real ones), ``tinylm train gpt --preset
tang-poems`` and ``tinylm poems`` end to end on a model trained for a few steps, and the bad
inputs of the command. No network and no real data."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from cli_helpers import run_cli
from tinylm.data import DATASETS, DatasetChecksumError, DatasetFile
from tinylm.data import datasets as datasets_module
from tinylm.data.poetry import (FORM_KINDS, POEM_FILES, build_corpus, five_char_problem,
                                is_five_char_quatrain, is_validation, quatrain_problem,
                                quatrains_of, read_poem_file, verse_lines)
from tinylm.train import quatrains as quatrains_module
from tinylm.train.presets import get_preset
from tinylm.train.setup import data_provenance

DENG = "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"
QUATRAINS = [
    "春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。",
    "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。",
    DENG,
    "千山鳥飛絕，萬徑人蹤滅。孤舟蓑笠翁，獨釣寒江雪。",
    "紅豆生南國，春來發幾枝。願君多採擷，此物最相思。",
    "松下問童子，言師採藥去。只在此山中，雲深不知處。",
    "移舟泊煙渚，日暮客愁新。野曠天低樹，江清月近人。",
    "空山不見人，但聞人語響。返景入深林，復照青苔上。",
    "鋤禾日當午，汗滴禾下土。誰知盤中飧，粒粒皆辛苦。",
    "向晚意不適，驅車登古原。夕陽無限好，只是近黃昏。",
    "問君何能爾？心遠地自偏。采菊東籬下，悠然見南山。",
]
REGULATED = ("國破山河在，城春草木深。感時花濺淚，恨別鳥驚心。"
             "烽火連三月，家書抵萬金。白頭搔更短，渾欲不勝簪。")
SIX_LINES = QUATRAINS[0] + "月出驚山鳥，時鳴春澗中。"          # shares 春曉's first line
ODD = ["[爽]節在重九，物華新雨餘。清秋黃葉下，菊散金潭初。",
       "今宵冬律盡，來朝麗景新。花餘凝地雪，冰□已鏤津。"]
SEVEN = "朝辭白帝彩雲間，千里江陵一日還。兩岸猿聲啼不住，輕舟已過萬重山。"
COUPLET = "山光悅鳥性，潭影空人心。"
VAL_FRACTION = 0.3


def _poem(text: str) -> dict:
    """A chinese-poetry record: one paragraph per sentence, padded with spaces to strip."""
    sentences = re.findall(r"[^。]*。|[^。]+$", text)
    return {"author": "佚名", "title": "無題", "id": "x", "paragraphs": [f" {s} " for s in sentences]}


def _register(monkeypatch, folder, name: str, payload: bytes) -> None:
    """Write ``payload`` under ``folder`` and register it as dataset ``name``."""
    path = folder / "poems" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    monkeypatch.setitem(DATASETS, name, DatasetFile(
        f"poems/{name}.json", hashlib.sha256(payload).hexdigest(), "https://example.invalid/"))


def _json(poems) -> bytes:
    return json.dumps([_poem(p) for p in poems], ensure_ascii=False).encode("utf-8")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data folder and cache, no shared/data, no network."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("TINYLM_DATA_DIR", str(folder))
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets_module, "shared_data_dirs", lambda: [])

    def no_network(url, destination, member=None):
        raise OSError("network disabled in tests")
    monkeypatch.setattr(datasets_module, "download", no_network)
    return folder


@pytest.fixture
def tiny_poems(data_dir, monkeypatch):
    """The six poem files replaced by tiny ones: every kind of poem the builder meets."""
    first = QUATRAINS + [REGULATED, SIX_LINES, *ODD, SEVEN, COUPLET]
    files = {POEM_FILES[0]: _json(first), POEM_FILES[-1]: _json([QUATRAINS[1]])}   # a repeat
    for name in POEM_FILES:
        _register(monkeypatch, data_dir, name, files.get(name, b"[]"))
    return data_dir


# -- the form ----------------------------------------------------------------------------------

def test_verse_lines_keep_each_mark_with_its_line():
    assert verse_lines("白日依山盡，黃河入海流。") == ["白日依山盡，", "黃河入海流。"]
    assert verse_lines("白日依山盡，黃河") == ["白日依山盡，", "黃河"]
    assert verse_lines("，，") == ["，", "，"]


def test_good_quatrains_pass():
    for text in QUATRAINS:
        assert quatrain_problem(text) is None and is_five_char_quatrain(text), text
    assert five_char_problem(REGULATED) is None and five_char_problem(REGULATED, 8) is None


@pytest.mark.parametrize("text, kind, message", [
    ("", "empty", "empty"),
    (DENG[:-1] + ".", "character", r"'\.' \(U\+002E\) at position 23"),
    (DENG.replace("山", "a"), "character", "'a'"),
    (DENG[:12], "line count", "^2 lines, not 4$"),
    (DENG + "月出驚山鳥，", "line count", "^5 lines, not 4$"),
    (REGULATED, "line count", "8 lines, not 4"),
    (DENG.replace("白日依山盡", "白日依山"), "line length", "line 1 .* 4 characters, not 5"),
    (SEVEN, "line length", "line 1 .* 7 characters, not 5"),
    (DENG[:6] + "，" + DENG[12:], "line length", r"line 2 \(，\) has 0 characters"),
    (DENG[:-1], "punctuation", r"line 4 \(更上一層樓\) ends without a mark"),
    (DENG.replace("，", "。", 1), "punctuation", "line 1 .* ends with '。'; the first line"),
    (DENG.replace("流。", "流，"), "punctuation", "line 2 .* ends with '，'; the second line"),
])
def test_each_failure_is_named(text, kind, message):
    problem = quatrain_problem(text)
    assert problem is not None and not is_five_char_quatrain(text)
    assert problem.kind == kind and kind in FORM_KINDS
    assert re.search(message, problem.message), problem.message


def test_a_five_character_poem_is_whole_couplets():
    assert five_char_problem(DENG + "月出驚山鳥，").message == "5 lines: not whole couplets"
    assert five_char_problem(COUPLET) is None                # one couplet is the form...
    assert quatrains_of(COUPLET) == []                       # ...but holds no quatrain
    assert quatrains_of(REGULATED) == [REGULATED[:24], REGULATED[24:]]
    assert quatrains_of(SIX_LINES) == [QUATRAINS[0]]         # the closing couplet is dropped


# -- the split ---------------------------------------------------------------------------------

def test_the_split_is_by_first_line_seeded_and_near_the_fraction():
    poems = [f"{chr(0x4E00 + i)}山鳥飛絕，萬徑人蹤滅。" for i in range(4000)]
    sides = [is_validation(p, 0.1) for p in poems]
    assert sides == [is_validation(p, 0.1) for p in poems]            # deterministic
    assert 0.08 < sum(sides) / len(sides) < 0.12
    assert sides != [is_validation(p, 0.1, seed=1) for p in poems]    # the seed matters
    assert all(is_validation(p, 0.1) == is_validation(p[:6] + "另一首詩，", 0.1) for p in poems)


def test_the_corpus_split_is_deterministic_disjoint_and_order_free(tiny_poems, monkeypatch):
    corpus = build_corpus(VAL_FRACTION)
    assert corpus == build_corpus(VAL_FRACTION)
    assert corpus.train and corpus.val and not set(corpus.train) & set(corpus.val)
    reordered = build_corpus(VAL_FRACTION, names=POEM_FILES[::-1])
    assert set(reordered.train) == set(corpus.train) and set(reordered.val) == set(corpus.val)
    side_of_first = "val" if is_validation(QUATRAINS[0], VAL_FRACTION) else "train"
    assert getattr(corpus, side_of_first).count(QUATRAINS[0]) == 2    # 春曉 and its variant


# -- the corpus --------------------------------------------------------------------------------

def test_corpus_counts_and_layout(tiny_poems):
    corpus = build_corpus(VAL_FRACTION)
    kept = QUATRAINS + [REGULATED, SIX_LINES]
    val = [p for p in kept if is_validation(p, VAL_FRACTION)]
    assert corpus.counts == {
        "poems": len(QUATRAINS) + 7, "odd_characters": 2, "repeats": 1,
        "not_five_character": 1, "too_short": 1, "couplet_left_over": 1,
        "train_poems": len(kept) - len(val),
        "train_quatrains": len(corpus.train), "train_characters": 25 * len(corpus.train),
        "val_poems": len(val), "val_quatrains": len(corpus.val),
        "val_characters": 25 * len(corpus.val)}
    assert len(corpus.train) + len(corpus.val) == len(QUATRAINS) + 3
    train_text, val_text = corpus.texts()
    assert train_text.split("\n")[:-1] == list(corpus.train) and train_text.endswith("\n")
    assert all(is_five_char_quatrain(line) for line in (train_text + val_text).split("\n")[:-1])
    in_order = [q for p in kept for q in quatrains_of(p) if not is_validation(p, VAL_FRACTION)]
    assert list(corpus.train) == in_order                    # file order, stanzas together


def test_poems_are_read_stripped(tiny_poems):
    poems = read_poem_file(POEM_FILES[0])
    assert poems[0].text == QUATRAINS[0] and poems[0].source == POEM_FILES[0]
    assert poems[0].index == 0


def test_an_empty_side_is_an_error(tiny_poems):
    with pytest.raises(ValueError, match="left no val poems .* val_fraction=1e-09"):
        build_corpus(1e-9)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        build_corpus(1.0)


@pytest.mark.parametrize("payload, message", [
    (b"[{oops", "is not UTF-8 JSON"),
    (b'{"paragraphs": []}', "holds a JSON dict, not the list of poems"),
    (b'[{"title": "x"}]', "poem 0 of .* has no \"paragraphs\" list of strings"),
    (b'[{"paragraphs": ["a", 3]}]', "poem 0 of .* has no \"paragraphs\" list of strings"),
])
def test_a_file_that_is_not_poems_is_named(data_dir, monkeypatch, payload, message):
    _register(monkeypatch, data_dir, "poetry.tang.0", payload)
    with pytest.raises(ValueError, match=message) as error:
        read_poem_file("poetry.tang.0")
    assert "'poetry.tang.0'" in str(error.value)


def test_a_changed_file_is_refused(data_dir, monkeypatch):
    _register(monkeypatch, data_dir, "poetry.tang.0", _json(QUATRAINS))
    (data_dir / "poems" / "poetry.tang.0.json").write_bytes(_json(QUATRAINS[:3]))
    with pytest.raises(DatasetChecksumError, match="has sha256 .* expected"):
        read_poem_file("poetry.tang.0")


def test_the_dataset_and_preset_are_registered():
    provenance = data_provenance("tang-poems")
    assert provenance["dataset"] == "tang-poems" and list(provenance["sha256"]) == list(POEM_FILES)
    preset = get_preset("tang-poems")
    assert preset["model"] == "gpt" and preset["train"]["dataset"] == "tang-poems"
    assert preset["model_config"]["block_size"] >= 2 * 25      # two quatrains and newlines


# -- the measurement ---------------------------------------------------------------------------

def test_the_measures_count_what_they_say(monkeypatch):
    """Samples fixed in advance: the fractions, failures and examples are exact."""
    drawn = [(QUATRAINS[0], True), (DENG[:12], True), (DENG[:-1] + "。", False),
             (QUATRAINS[1], True), (DENG.replace("白日依山盡", "白日依山"), True)]
    monkeypatch.setattr(quatrains_module, "sample_poems",
                        lambda model, tok, first, t, n, rng, xp: drawn[:n])

    class Chars:
        chars = ["\n", *"春白"]
    [result] = quatrains_module.measure_quatrains(None, Chars(), ["春"], [0.7], samples=5,
                                                  known={QUATRAINS[1]}, examples=2)
    assert result["samples"] == 5 and result["form"] == 2 / 5 and result["copies"] == 1 / 5
    assert result["line_count"] == 3 / 5                    # the unterminated one does not count
    assert result["failures"] == {"line count": 1, "unterminated": 1, "line length": 1}
    assert result["examples"] == [{"text": QUATRAINS[0], "problem": None},
                                  {"text": DENG[:12], "problem": "2 lines, not 4"}]


# -- the command end to end --------------------------------------------------------------------

TINY_GPT = ["--model", "n_layer=1", "--model", "n_embd=16", "--model", "n_head=2",
            "--max-iters", "4", "--eval-interval", "2", "--batch-size", "4", "--progress", "false"]


@pytest.fixture
def tiny_run(tiny_poems, tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run_cli(["train", "gpt", "--preset", "tang-poems", "--val-fraction",
                            str(VAL_FRACTION), "--out-dir", str(out), *TINY_GPT], capsys)
    assert status == 0, err
    return out


def test_poems_end_to_end(tiny_run, capsys):
    argv = ["poems", str(tiny_run), "--first", "春,月", "--temperatures", "0.7,1.0",
            "--samples", "3", "--seed", "5", "--json"]
    status, out, err = run_cli(argv, capsys)
    assert status == 0, err
    report = json.loads(out)
    assert run_cli(argv, capsys)[1] == out                                  # seeded
    meta = json.loads((tiny_run / "ckpt.json").read_text())
    assert report["val_perplexity"] == meta["run"]["evals"][-1]["val_perplexity"]
    assert report["step"] == 4 and report["dataset"] == "tang-poems"
    assert [r["temperature"] for r in report["temperatures"]] == [0.7, 1.0]
    for r in report["temperatures"]:
        assert r["samples"] == 6
        assert 0 <= r["form"] <= r["line_count"] <= 1 and 0 <= r["copies"] <= 1
        assert [e["text"][0] for e in r["examples"]] == ["春", "月"]
        assert all("\n" not in e["text"] for e in r["examples"])
        assert sum(r["failures"].values()) == round(6 * (1 - r["form"]))
    status, text, _ = run_cli(argv[:-1], capsys)
    assert status == 0
    assert "perplexity" in text and text.count("quatrain form") == 2
    assert "four lines" in text and "copied from training" in text


def _assert_clean_error(status, err, expect, usage=False):
    assert status == (2 if usage else 1), err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    assert re.search(expect, err), f"{expect!r} not in:\n{err}"


@pytest.mark.parametrize("flags, expect", [
    (["--first", ""], "give at least one first character"),
    (["--first", " , "], "give at least one first character"),
    (["--first", "春天,月"], "'春天' is 2 characters"),
    (["--temperatures", "0"], "temperature 0.0 must be a finite number > 0"),
    (["--temperatures", "0.8,-1"], "temperature -1.0 must be"),
    (["--temperatures", "hot"], "'hot' is not a number"),
    (["--samples", "0"], "must be an integer >= 1"),
])
def test_bad_flags_are_usage_errors(tiny_run, capsys, flags, expect):
    _assert_clean_error(*run_cli(["poems", str(tiny_run), *flags], capsys)[::2], expect,
                        usage=True)


def test_a_character_the_run_does_not_know(tiny_run, capsys):
    _assert_clean_error(*run_cli(["poems", str(tiny_run), "--first", "风"], capsys)[::2],
                        "'风' is not among the run's .* traditional characters")


def test_a_run_that_is_not_a_gpt(tiny_poems, tmp_path, capsys):
    out = tmp_path / "ngram"
    status, _, err = run_cli(["train", "ngram", "--dataset", "tang-poems", "--model", "order=2",
                            "--val-fraction", str(VAL_FRACTION), "--out-dir", str(out)], capsys)
    assert status == 0, err
    _assert_clean_error(*run_cli(["poems", str(out)], capsys)[::2],
                        "holds a 'ngram' run; tinylm poems samples from a GPT")


def test_a_folder_without_a_run(tmp_path, capsys):
    _assert_clean_error(*run_cli(["poems", str(tmp_path)], capsys)[::2], "no checkpoint in")
