"""``caption_scores``: the caption / answer metrics of a set of items in one call."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

from vidlab.errors import InputError
from vidlab.metrics.caption.ngram import bleu, cider_d, rouge_l

#: metric name -> the keys it adds to the result, in the order results are reported
METRIC_KEYS = {
    "bleu": ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"),
    "cider": ("CIDEr",),
    "rouge": ("ROUGE-L",),
    "meteor": ("METEOR",),
    "sbert": ("S-BERT",),
    "bertscore": ("BERTScore",),
}
DEFAULT_METRICS = ("bleu", "cider", "rouge", "meteor")
TOKENIZERS = ("none", "coco")
_ALIASES = {"ciderd": "cider", "rougel": "rouge", "bleu4": "bleu", "svqa": "sbert", "bertscoref1": "bertscore"}


def metric_names(metrics: Iterable[str]) -> list[str]:
    """Canonical metric names in report order; accepts the result keys too (``CIDEr``, ``ROUGE-L``, ``S-BERT``)."""
    wanted = set()
    for name in metrics:
        key = "".join(c for c in name.lower() if c.isalnum())
        key = _ALIASES.get(key, key)
        if key not in METRIC_KEYS:
            raise InputError(f"unknown caption metric {name!r}; choose from {', '.join(METRIC_KEYS)}")
        wanted.add(key)
    return [m for m in METRIC_KEYS if m in wanted]


def _aligned(
    references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str | Sequence[str]]
) -> tuple[list[str], list[list[str]], list[str]]:
    """Ids (in the references' order), reference lists and hypotheses, checked as pycocoevalcap asserts them."""
    missing = [k for k in references if k not in hypotheses]
    extra = [k for k in hypotheses if k not in references]
    if missing or extra:
        parts = [f"{len(missing)} without a hypothesis ({', '.join(map(str, missing[:5]))})"] if missing else []
        parts += [f"{len(extra)} hypotheses without references ({', '.join(map(str, extra[:5]))})"] if extra else []
        raise InputError("references and hypotheses must have the same ids: " + "; ".join(parts))
    if not references:
        raise InputError("nothing to evaluate: no references")
    ids, refs, hyps = [], [], []
    for key, ref in references.items():
        if isinstance(ref, str) or not all(isinstance(r, str) for r in ref):
            raise InputError(f"references[{key!r}] must be a list of strings, got {ref!r:.80}")
        if len(ref) == 0:
            raise InputError(f"references[{key!r}] is empty: every item needs at least one reference")
        hyp = hypotheses[key]
        if not isinstance(hyp, str):  # pycocoevalcap's form, a list holding one hypothesis, is accepted
            if len(hyp) != 1 or not isinstance(hyp[0], str):
                raise InputError(f"hypotheses[{key!r}] must be one string, got {hyp!r:.80}")
            hyp = hyp[0]
        ids.append(key)
        refs.append(list(ref))
        hyps.append(hyp)
    return ids, refs, hyps


def tokenize_captions(
    references: list[list[str]], hypotheses: list[str], tokenize: str = "none"
) -> tuple[list[list[str]], list[str]]:
    """``none``: the texts as they are (MicroG-4M; each metric splits on whitespace itself); ``coco``: pycocoevalcap's
    PTB tokenizer (Java), lower-cased, punctuation removed, one run for the references and one for the hypotheses."""
    if tokenize == "none":
        return references, hypotheses
    if tokenize != "coco":
        raise InputError(f"unknown tokenize {tokenize!r}; choose from {', '.join(TOKENIZERS)}")
    from vidlab.metrics.caption.java import ptb_tokenize

    flat = iter(ptb_tokenize([r for refs in references for r in refs]))
    tok_refs = [[next(flat) for _ in refs] for refs in references]
    return tok_refs, ptb_tokenize(hypotheses)


def check_available(names: list[str], tokenize: str, meteor=None, sbert_model=None, bertscore_model=None) -> None:
    """Fail before any scoring when Java, a jar, a package or a model folder that ``names`` need is missing."""
    if tokenize == "coco" or ("meteor" in names and meteor is None):
        from vidlab.metrics.caption import java

        java.find_java()
        for needed, jar in (
            (tokenize == "coco", java.PTB_JAR),
            ("meteor" in names and meteor is None, java.METEOR_JAR),
        ):
            if needed:
                java.find_pycocoevalcap_file(jar)
    if "sbert" in names or "bertscore" in names:
        from vidlab.metrics.caption import embedding

        embedding.check_available("sbert" in names, "bertscore" in names, sbert_model, bertscore_model)


def caption_scores(
    references: Mapping[str, Sequence[str]],
    hypotheses: Mapping[str, str],
    metrics: Iterable[str] = DEFAULT_METRICS,
    tokenize: str = "none",
    *,
    sbert_model=None,
    bertscore_model=None,
    bertscore_layers: int | None = None,
    device: str | None = None,
    meteor=None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Caption metrics of a set of items, raw values as pycocoevalcap 1.2 reports them.

    Args:
        references: item id -> its reference sentences (at least one).
        hypotheses: item id -> its hypothesis; the same ids as ``references``.
        metrics: any of ``bleu`` (``BLEU-1``..``BLEU-4``), ``cider`` (``CIDEr``, i.e. CIDEr-D), ``rouge``
            (``ROUGE-L``), ``meteor`` (``METEOR``, Java), ``sbert`` (``S-BERT``), ``bertscore`` (``BERTScore``).
        tokenize: ``none`` (texts as given, MicroG-4M) or ``coco`` (PTB tokenizer, Java). S-BERT and BERTScore always
            see the texts as given.
        sbert_model: all-MiniLM-L6-v2 folder (see :func:`~vidlab.metrics.caption.embedding.resolve_sbert_model`).
        bertscore_model: BERTScore model folder (default ``VIDLAB_BERTSCORE_MODEL``).
        bertscore_layers: BERTScore layer (default 17 for roberta-large).
        device: torch device of the embedding models.
        meteor: a :class:`~vidlab.metrics.caption.java.MeteorScorer` to use (default: one process shared by all
            calls, ended at exit).
        log: receives notes (a model that makes S-BERT / BERTScore not comparable with MicroG-4M's); default: a
            ``UserWarning``.

    Returns:
        ``{key: value}`` for the keys of the requested metrics, in the order of :data:`METRIC_KEYS`.
    """
    names = metric_names(metrics)
    if tokenize not in TOKENIZERS:
        raise InputError(f"unknown tokenize {tokenize!r}; choose from {', '.join(TOKENIZERS)}")
    log = log or (lambda msg: warnings.warn(msg, stacklevel=3))
    _, raw_refs, raw_hyps = _aligned(references, hypotheses)
    ngram = {"bleu", "cider", "rouge", "meteor"} & set(names)
    check_available(names, tokenize if ngram else "none", meteor, sbert_model, bertscore_model)
    refs, hyps = raw_refs, raw_hyps
    if ngram:
        refs, hyps = tokenize_captions(raw_refs, raw_hyps, tokenize)
    out: dict[str, float] = {}
    for name in names:
        if name == "bleu":
            out.update(zip(METRIC_KEYS["bleu"], bleu(refs, hyps)[0]))
        elif name == "cider":
            out["CIDEr"] = cider_d(refs, hyps)[0]
        elif name == "rouge":
            out["ROUGE-L"] = rouge_l(refs, hyps)[0]
        elif name == "meteor":
            from vidlab.metrics.caption.java import shared_meteor

            out["METEOR"] = (meteor or shared_meteor()).score(refs, hyps)[0]
        elif name == "sbert":
            from vidlab.metrics.caption.embedding import sbert_similarity

            out["S-BERT"] = sbert_similarity(raw_refs, raw_hyps, sbert_model, device=device, log=log)[0]
        else:
            from vidlab.metrics.caption.embedding import bertscore_f1

            out["BERTScore"] = bertscore_f1(raw_refs, raw_hyps, bertscore_model, bertscore_layers, device, log=log)[0]
    return out
