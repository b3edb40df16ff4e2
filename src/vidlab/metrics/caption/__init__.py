"""Caption and VQA metrics (MicroG-4M's captioning and VQA evaluation; docs/CAPTION_METRICS.md).

``ngram`` holds BLEU-1..4, CIDEr-D and ROUGE-L in pure Python/numpy with pycocoevalcap 1.2's arithmetic. The other
modules wrap what runs elsewhere, and are why this package, unlike the rest of ``vidlab.metrics``, imports more
than numpy: ``java`` (METEOR 1.5 and the PTB tokenizer, the jars of the pycocoevalcap wheel, run with Java),
``embedding`` (S-BERT and BERTScore through the optional sentence-transformers / bert-score packages, imported
only when asked for), ``evaluate`` (the files and the table of ``vidlab caption-eval``).
"""

from vidlab.metrics.caption.ngram import bleu, cider_d, lcs_length, rouge_l
from vidlab.metrics.caption.scores import DEFAULT_METRICS, METRIC_KEYS, caption_scores, metric_names

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_KEYS",
    "bleu",
    "caption_scores",
    "cider_d",
    "lcs_length",
    "metric_names",
    "rouge_l",
]
