"""Write tests/assets/caption_fixtures.json: pycocoevalcap 1.2's caption metrics on generated caption sets.

Run in an environment with ``pycocoevalcap==1.2`` and Java (METEOR and the PTB tokenizer are its jars)::

    /tmp/refs/ptv/bin/python tests/assets/make_caption_fixtures.py

The JSON holds each case's texts and pycocoevalcap's values, so the test needs neither this script nor
pycocoevalcap:

- ``cases``: ``{name, references: {id: [str]}, hypotheses: {id: str}, scores: {BLEU-1..4, CIDEr, ROUGE-L,
  METEOR}}``, the texts as MicroG-4M passes them (no tokenization). Random sets over many seeds (one to 25 items,
  one to five references, hypotheses that copy, edit or ignore a reference, empty ones), then the edge cases by
  name: one item, several references, all hypotheses empty, no matching 4-gram, ties of the closest reference
  length, double spaces, line breaks and tabs, long captions, clipping of repeated words, non-ASCII text.
  pycocoevalcap's METEOR wrapper cannot send a line break (the jar reads one request per line), so for the cases
  holding one its METEOR is that of the texts with every whitespace run made one space (what MicroG-4M's copy of
  the wrapper sends); ``meteor_collapsed`` marks them. METEOR is null for the non-ASCII case (the jar decodes
  its input in the platform charset, which differs between machines).
- ``coco_cases``: the same for ``tokenize="coco"``: ``tokenized_references`` / ``tokenized_hypotheses`` from
  pycocoevalcap's ``PTBTokenizer`` (references and hypotheses tokenized in two calls, as ``COCOEvalCap`` does) and
  the scores of the tokenized texts.
- ``failures``: inputs on which pycocoevalcap itself fails (its exception recorded), where vidlab raises a clear
  error instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("caption_fixtures.json")
WORDS = (
    "a an the astronaut crew member man woman two people is are floats holds grabs moves slowly quickly inside "
    "station module camera laptop cable handrail panel red blue white bag while talking to another near window "
    "and with on in of at his her their"
).split()
VARIANTS = ["The", "A", "astronaut.", "module,", "station.", "Astronaut", ",", ".", "(left)", "don't", "U.S."]
RANDOM_SEEDS = range(40)


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(WORDS) if rng.random() > 0.12 else rng.choice(VARIANTS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words)


def _edit(rng: random.Random, text: str) -> str:
    """A hypothesis near a reference: words dropped, swapped, replaced or inserted."""
    words = text.split()
    for _ in range(rng.randint(0, 4)):
        op = rng.random()
        i = rng.randrange(len(words) + 1)
        if op < 0.3 and words:
            del words[min(i, len(words) - 1)]
        elif op < 0.5 and len(words) > 1:
            j = rng.randrange(len(words))
            i = min(i, len(words) - 1)
            words[i], words[j] = words[j], words[i]
        elif op < 0.8:
            words.insert(i, rng.choice(WORDS))
        elif words:
            words[min(i, len(words) - 1)] = rng.choice(WORDS)
    return " ".join(words)


def random_case(seed: int) -> dict:
    rng = random.Random(seed)
    n = 1 if seed % 10 == 3 else rng.randint(2, 25)
    refs, hyps = {}, {}
    for i in range(n):
        key = f"vid{seed}_{i}"
        refs[key] = [_sentence(rng, 1, 18) for _ in range(rng.randint(1, 5))]
        kind = rng.random()
        if kind < 0.08:
            hyps[key] = ""
        elif kind < 0.2:
            hyps[key] = rng.choice(refs[key])
        elif kind < 0.7:
            hyps[key] = _edit(rng, rng.choice(refs[key]))
        else:
            hyps[key] = _sentence(rng, 1, 18)
    return {"name": f"random_{seed}", "references": refs, "hypotheses": hyps}


def edge_cases() -> list[dict]:
    rng = random.Random(1234)
    long_refs = {f"long{i}": [_sentence(rng, 120, 200) for _ in range(2)] for i in range(4)}
    long_hyps = {k: _edit(rng, v[0]) + " " + _sentence(rng, 10, 60) for k, v in long_refs.items()}
    cases = [
        ("one_item_one_ref", {"v": ["an astronaut floats in the module"]}, {"v": "the astronaut floats in a module"}),
        (
            "one_item_several_refs",
            {"v": ["a man holds a cable", "the crew member grabs a red cable", "two people"]},
            {"v": "a crew member holds a red cable"},
        ),
        (
            "several_refs",
            {
                "a": ["a man holds a cable", "the man grabs the cable"],
                "b": ["two people talk", "crew"],
                "c": ["an astronaut floats", "the astronaut floats slowly", "someone floats"],
            },
            {"a": "a man grabs a cable", "b": "two crew members talk", "c": "the astronaut floats"},
        ),
        (
            "all_hypotheses_empty",
            {"a": ["a man holds a cable"], "b": ["two people talk near the window"]},
            {"a": "", "b": ""},
        ),
        (
            "some_hypotheses_empty",
            {"a": ["a man holds a cable"], "b": ["two people talk"], "c": ["a camera moves"]},
            {"a": "", "b": "two people talk", "c": ""},
        ),
        (
            "no_4gram_match",
            {"a": ["a man holds a red cable near the window"], "b": ["the crew member floats inside"]},
            {"a": "cable red a holds man a", "b": "inside floats member crew the"},
        ),
        (
            "identical",
            {"a": ["a man holds a red cable"], "b": ["the crew member floats inside the station"]},
            {"a": "a man holds a red cable", "b": "the crew member floats inside the station"},
        ),
        ("closest_length_tie", {"a": ["a b c", "a b c d e"], "b": ["x y", "x y z w"]}, {"a": "a b c d", "b": "x y z"}),
        (
            "shorter_than_refs",
            {"a": ["a man holds a red cable near the window"], "b": ["two people talk near it"]},
            {"a": "a man", "b": "two"},
        ),
        (
            "clipping",
            {"a": ["the cat sat on the mat"], "b": ["a a b"]},
            {"a": "the the the the the the", "b": "a a a a"},
        ),
        (
            "empty_reference_among_others",
            {"a": ["", "a man holds a cable"], "b": ["two people talk", ""]},
            {"a": "a man holds it", "b": ""},
        ),
        (
            "double_spaces",
            {"a": ["a  man holds  a cable", " two people "], "b": ["the   crew floats"]},
            {"a": "a man  holds a  cable ", "b": "  the crew   floats"},
        ),
        (
            "line_breaks",
            {"a": ["a man\nholds a cable", "two\tpeople"], "b": ["the crew\n\nfloats inside"]},
            {"a": "a man holds\na cable", "b": "the crew floats\r\ninside"},
        ),
        (
            "case_and_punctuation",
            {"a": ["A man holds a cable.", "The man, holding a cable"], "b": ["Two people (left)"]},
            {"a": "a man holds a cable", "b": "two people (left) ."},
        ),
        ("long_captions", long_refs, long_hyps),
        (
            "non_ascii",
            {"a": ["un astronaute flotte près du hublot", "naïve café"], "b": ["größer als"]},
            {"a": "l'astronaute flotte près du hublot", "b": "größer"},
        ),
    ]
    return [{"name": name, "references": refs, "hypotheses": hyps} for name, refs, hyps in cases]


COCO_CASES = ["case_and_punctuation", "several_refs", "double_spaces", "random_0", "random_1", "random_13"]


def pycoco_scores(refs: dict, hyps: dict, meteor, meteor_texts: tuple | None) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = {k: list(v) for k, v in refs.items()}, {k: [hyps[k]] for k in refs}
    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its counts
        bleu = Bleu(4).compute_score(gts, res)[0]
    scores = {f"BLEU-{k + 1}": float(v) for k, v in enumerate(bleu)}
    scores["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    scores["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    if meteor_texts is None:
        scores["METEOR"] = None
    else:
        m_gts, m_res = meteor_texts
        scores["METEOR"] = float(meteor.compute_score(m_gts, {k: [m_res[k]] for k in m_gts})[0])
    return scores


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def main() -> None:
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    meteor = Meteor()
    cases = [random_case(s) for s in RANDOM_SEEDS] + edge_cases()
    for case in cases:
        refs, hyps = case["references"], case["hypotheses"]
        texts = [t for v in refs.values() for t in v] + list(hyps.values())
        breaks = any(re.search(r"[\n\r\t\x0b\x0c]", t) for t in texts)
        if any(not t.isascii() for t in texts):
            meteor_texts = None
        elif breaks:
            meteor_texts = ({k: [_collapse(r) for r in v] for k, v in refs.items()},
                            {k: _collapse(v) for k, v in hyps.items()})  # fmt: skip
        else:
            meteor_texts = ({k: list(v) for k, v in refs.items()}, dict(hyps))
        case["meteor_collapsed"] = breaks
        case["scores"] = pycoco_scores(refs, hyps, meteor, meteor_texts)
        print(case["name"], {k: round(v, 5) if v is not None else None for k, v in case["scores"].items()})

    by_name = {c["name"]: c for c in cases}
    coco_cases = []
    for name in COCO_CASES:
        refs, hyps = by_name[name]["references"], by_name[name]["hypotheses"]
        tok = PTBTokenizer()
        with contextlib.redirect_stdout(io.StringIO()):
            tok_refs = tok.tokenize({k: [{"caption": r} for r in v] for k, v in refs.items()})
            tok_hyps = tok.tokenize({k: [{"caption": hyps[k]}] for k in refs})
        tok_hyps = {k: v[0] for k, v in tok_hyps.items()}
        coco_cases.append({"name": name, "references": refs, "hypotheses": hyps, "tokenized_references": tok_refs,
                           "tokenized_hypotheses": tok_hyps,
                           "scores": pycoco_scores(tok_refs, tok_hyps, meteor, (tok_refs, tok_hyps))})  # fmt: skip
        print("coco", name, coco_cases[-1]["scores"])

    failures = []
    from pycocoevalcap.cider.cider import Cider

    for name, refs, hyps in [("cider_all_references_empty", {"a": [""], "b": ["", " "]}, {"a": "x", "b": ""}),
                             ("cider_no_items", {}, {})]:  # fmt: skip
        try:
            Cider().compute_score(refs, {k: [v] for k, v in hyps.items()})
        except Exception as e:  # noqa: BLE001 - the point is to record how it fails
            failures.append({"name": name, "references": refs, "hypotheses": hyps, "metric": "cider",
                             "pycocoevalcap_error": f"{type(e).__name__}: {e}"})  # fmt: skip
        else:
            sys.exit(f"{name}: pycocoevalcap did not fail")

    out = {"reference": "pycocoevalcap 1.2 (BLEU, CIDEr-D, ROUGE-L, METEOR 1.5 jar, PTBTokenizer)",
           "generator": "tests/assets/make_caption_fixtures.py", "cases": cases, "coco_cases": coco_cases,
           "failures": failures}  # fmt: skip
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(cases)} cases, {len(coco_cases)} coco cases, {len(failures)} failures")


if __name__ == "__main__":
    main()
