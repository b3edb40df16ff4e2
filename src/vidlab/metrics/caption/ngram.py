"""BLEU-1..4, CIDEr-D and ROUGE-L with the arithmetic of the MS-COCO caption evaluation (pycocoevalcap 1.2).

Every function takes, per evaluated item (a video, or a question), a list of reference strings and one hypothesis
string, already tokenized: BLEU and CIDEr-D split on any run of whitespace (``str.split()``), ROUGE-L on single
spaces (``str.split(" ")``, so a double space gives an empty token and a newline stays inside a token), exactly as
the reference implementation does. Values are the raw ones it reports (BLEU and ROUGE-L in [0, 1], CIDEr-D on its
x10 scale).

- BLEU (Papineni et al., 2002): clipped n-gram counts, the reference length closest to the hypothesis (ties go to
  the shorter reference), ``1e-15`` / ``1e-9`` smoothing of every ratio; the corpus value pools counts and lengths
  over all items, the per-item values use each item's own.
- CIDEr-D (Vedantam et al., "CIDEr: Consensus-based Image Description Evaluation", arXiv 1411.5726): tf-idf n-gram
  vectors with document frequencies taken from the evaluated set's references, ``log(max(1, df))``, clipped
  cosine, a Gaussian length penalty (sigma 6) on the difference of the bigram counts, mean over n = 1..4 and over
  the references, x10.
- ROUGE-L (Lin, 2004): longest common subsequence, the best precision and the best recall over the references,
  F-measure with beta 1.2.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from vidlab.errors import InputError

_TINY = 1e-15  # keeps a zero count at zero after the division
_SMALL = 1e-9  # avoids dividing by zero


def _ngram_counts(words: list[str], n: int) -> dict[tuple[str, ...], int]:
    """Counts of the 1..n-grams of ``words``, in the order the reference implementation inserts them (all unigrams
    left to right, then all bigrams, ...); the order fixes how floating-point sums accumulate."""
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


def _check_lengths(references: Sequence[Sequence[str]], hypotheses: Sequence[str]) -> None:
    if len(references) != len(hypotheses):
        raise InputError(f"{len(references)} reference lists but {len(hypotheses)} hypotheses")
    if not hypotheses:
        raise InputError("nothing to evaluate: no hypotheses")
    for i, refs in enumerate(references):
        if len(refs) == 0:
            raise InputError(f"item {i} has no reference")


# ------------------------------------------------------------------------------------------------------------ BLEU
def bleu(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], n: int = 4
) -> tuple[list[float], list[list[float]]]:
    """Corpus BLEU-1..n and per-item BLEU-1..n (``per_item[k][i]``: BLEU-(k+1) of item i).

    Args:
        references: per item, its reference sentences (at least one).
        hypotheses: per item, one hypothesis sentence.
        n: the largest n-gram order.
    """
    _check_lengths(references, hypotheses)
    total_correct, total_guess = [0] * n, [0] * n
    total_test, total_ref = 0, 0
    per_item: list[list[float]] = [[] for _ in range(n)]
    for refs, hyp in zip(references, hypotheses):
        ref_lens, max_counts = [], {}
        for ref in refs:
            words = ref.split()
            ref_lens.append(len(words))
            for ngram, count in _ngram_counts(words, n).items():
                max_counts[ngram] = max(max_counts.get(ngram, 0), count)
        words = hyp.split()
        test_len = len(words)
        # the closest reference length; on a tie the shorter one
        ref_len = min((abs(length - test_len), length) for length in ref_lens)[1]
        guess = [max(0, test_len - k + 1) for k in range(1, n + 1)]
        correct = [0] * n
        for ngram, count in _ngram_counts(words, n).items():
            correct[len(ngram) - 1] += min(max_counts.get(ngram, 0), count)

        total_test += test_len
        total_ref += ref_len
        score = 1.0
        for k in range(n):
            total_correct[k] += correct[k]
            total_guess[k] += guess[k]
            score *= (float(correct[k]) + _TINY) / (float(guess[k]) + _SMALL)
            per_item[k].append(score ** (1.0 / (k + 1)))
        ratio = (test_len + _TINY) / (ref_len + _SMALL)
        if ratio < 1:
            for k in range(n):
                per_item[k][-1] *= math.exp(1 - 1 / ratio)

    corpus, score = [], 1.0
    for k in range(n):
        score *= float(total_correct[k] + _TINY) / (total_guess[k] + _SMALL)
        corpus.append(score ** (1.0 / (k + 1)))
    ratio = (total_test + _TINY) / (total_ref + _SMALL)
    if ratio < 1:
        corpus = [value * math.exp(1 - 1 / ratio) for value in corpus]
    return corpus, per_item


# --------------------------------------------------------------------------------------------------------- CIDEr-D
def cider_d(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], n: int = 4, sigma: float = 6.0
) -> tuple[float, np.ndarray]:
    """CIDEr-D of the set (mean over items) and per item (float64 array).

    Document frequencies come from the references of the items evaluated here, so the value of one item depends on
    the whole set (as in pycocoevalcap's ``Cider``). With a single item every weight is zero and so is the score.

    Raises:
        ValueError: when no reference holds a word (the reference implementation fails there as well).
    """
    _check_lengths(references, hypotheses)
    ref_counts = [[_ngram_counts(ref.split(), n) for ref in refs] for refs in references]
    doc_freq: dict[tuple[str, ...], float] = defaultdict(float)
    for refs in ref_counts:
        for ngram in {ngram for counts in refs for ngram in counts}:
            doc_freq[ngram] += 1
    if not doc_freq:
        raise InputError("CIDEr-D needs at least one non-empty reference in the evaluated set (all are empty)")
    log_num_items = np.log(float(len(references)))
    idf: dict[tuple[str, ...], float] = {}  # log(N) - log(max(1, df)), computed once per n-gram

    def vectors(counts):
        """tf-idf weights per n-gram order, their norms, and the bigram count (the 'length' of the penalty)."""
        vec = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for ngram, term_freq in counts.items():
            order = len(ngram) - 1
            weight = idf.get(ngram)
            if weight is None:
                weight = idf[ngram] = float(log_num_items - np.log(max(1.0, doc_freq.get(ngram, 0.0))))
            weight = float(term_freq) * weight
            vec[order][ngram] = weight
            norm[order] += pow(weight, 2)
            if order == 1:  # the reference implementation measures length in bigrams
                length += term_freq
        return vec, [float(np.sqrt(v)) for v in norm], length

    scores = []
    for refs, hyp in zip(ref_counts, hypotheses):
        vec_h, norm_h, len_h = vectors(_ngram_counts(hyp.split(), n))
        total = [0.0] * n
        for counts in refs:
            vec_r, norm_r, len_r = vectors(counts)
            penalty = math.e ** (-(float(len_h - len_r) ** 2) / (2 * sigma**2))
            for k in range(n):
                ref_k, val = vec_r[k], 0.0
                for ngram, weight in vec_h[k].items():
                    ref_weight = ref_k.get(ngram, 0.0)
                    val += min(weight, ref_weight) * ref_weight  # clipped
                if norm_h[k] != 0 and norm_r[k] != 0:
                    val /= norm_h[k] * norm_r[k]
                total[k] += val * penalty
        score = np.mean(np.array(total))
        score /= len(refs)
        score *= 10.0
        scores.append(score)
    scores = np.array(scores)
    return float(np.mean(scores)), scores


# --------------------------------------------------------------------------------------------------------- ROUGE-L
def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel (Hyyro, "Bit-parallel LCS-length computation revisited", 2004): one big-integer update per token
    of the longer sequence instead of the quadratic table; the result is the same integer.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        m = masks.get(token)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def rouge_l(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], beta: float = 1.2
) -> tuple[float, np.ndarray]:
    """ROUGE-L of the set (mean over items) and per item (float64 array); tokens are ``str.split(" ")``."""
    _check_lengths(references, hypotheses)
    scores = []
    for refs, hyp in zip(references, hypotheses):
        tokens_h = hyp.split(" ")
        prec, rec = [], []
        for ref in refs:
            tokens_r = ref.split(" ")
            lcs = lcs_length(tokens_r, tokens_h)
            prec.append(lcs / float(len(tokens_h)))
            rec.append(lcs / float(len(tokens_r)))
        p, r = max(prec), max(rec)
        if p != 0 and r != 0:
            scores.append(((1 + beta**2) * p * r) / float(r + beta**2 * p))
        else:
            scores.append(0.0)
    scores = np.array(scores)
    return float(np.mean(scores)), scores
