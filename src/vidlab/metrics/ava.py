"""AVA-style spatio-temporal action detection: frame-mAP at an IoU threshold, and MicroG-4M's box-level metrics.

``frame_map`` reproduces three reference evaluators exactly (within 1e-6 per class), chosen by ``protocol``:

- ``"activitynet"``: the official AVA script of the ActivityNet repository (``Evaluation/get_ava_performance.py``).
- ``"mmaction2"``: MMAction2 1.2.0 ``mmaction.evaluation.functional.ava_utils.ava_eval``.
- ``"pyslowfast"``: PySlowFast ``slowfast/utils/ava_eval_helper.py`` (``run_evaluation``, used by ``evaluate_ava``).

All three are PASCAL VOC all-point AP per class after greedy per-keyframe matching; they differ in which
detections and classes are counted, in the order detections are matched and in float precision.
docs/ava_evaluation.md lists every difference with a worked example. Files are parsed with numpy (no
Python loop per row, :mod:`vidlab.metrics.ava_io`): a 10M-row prediction file reads in about ten seconds on two cores.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vidlab.errors import InputError
from vidlab.metrics.ava_io import (  # noqa: F401 (re-exported: the readers are part of this module's API)
    _US,
    AvaCsv,
    parse_labelmap,
    read_ava_csv,
    read_exclusions,
    read_labelmap,
    write_ava_csv,
)

PROTOCOLS = ("activitynet", "mmaction2", "pyslowfast")
ACTIVITYNET_CAPACITY = 50  # the ActivityNet script keeps the 50 best-scored detections of each keyframe
# MMAction2's breakdown of AVA's 80 actions by id (pose / object manipulation / person interaction).
AVA_CATEGORIES = (("person_movement", 1, 14), ("object_manipulation", 15, 63), ("person_interaction", 64, 80))
AVA_ACTION_NAMES = (
    "bend/bow (at the waist)", "crawl", "crouch/kneel", "dance", "fall down", "get up", "jump/leap", "lie/sleep",
    "martial art", "run/jog", "sit", "stand", "swim", "walk", "answer phone", "brush teeth", "carry/hold (an object)",
    "catch (an object)", "chop", "climb (e.g., a mountain)", "clink glass", "close (e.g., a door, a box)", "cook",
    "cut", "dig", "dress/put on clothing", "drink", "drive (e.g., a car, a truck)", "eat", "enter", "exit", "extract",
    "fishing", "hit (an object)", "kick (an object)", "lift/pick up", "listen (e.g., to music)",
    "open (e.g., a window, a car door)", "paint", "play board game", "play musical instrument", "play with pets",
    "point to (an object)", "press", "pull (an object)", "push (an object)", "put down", "read",
    "ride (e.g., a bike, a car, a horse)", "row boat", "sail boat", "shoot", "shovel", "smoke", "stir", "take a photo",
    "text on/look at a cellphone", "throw", "touch (an object)", "turn (e.g., a screwdriver)", "watch (e.g., TV)",
    "work on a computer", "write", "fight/hit (a person)", "give/serve (an object) to (a person)", "grab (a person)",
    "hand clap", "hand shake", "hand wave", "hug (a person)", "kick (a person)", "kiss (a person)", "lift (a person)",
    "listen to (a person)", "play with kids", "push (another person)", "sing to (e.g., self, a person, a group)",
    "take (an object) from (a person)", "talk to (e.g., self, a person, a group)", "watch (a person)",
)  # fmt: skip


# ----------------------------------------------------------------------------------------------- frame-mAP
class FrameMAP(NamedTuple):
    """Result of :func:`frame_map`. ``per_class`` holds nan for a class the protocol does not count."""

    map: float
    per_class: dict[int, float]
    num_classes: int  # classes that entered the mean
    num_gt: dict[int, int]  # ground-truth boxes per class, as the protocol counts them
    num_det: dict[int, int]  # detections per class that were scored
    categories: dict[str, float]  # AVA's person-movement / object-manipulation / person-interaction mAPs, if AVA
    protocol: str


def frame_map(
    gt,
    pred,
    labelmap,
    excluded=None,
    protocol: str = "activitynet",
    iou_threshold: float = 0.5,
    keyframe_unit: str = "second",
) -> FrameMAP:
    """Frame-level mAP of AVA-style detections (PASCAL VOC all-point AP per class, mean over counted classes).

    Args:
        gt, pred: CSV paths or :class:`AvaCsv` tables (ground truth; predictions with scores in column 8).
        labelmap: a ``.pbtxt`` path or ``[(id, name), ...]``; its ids are the whitelist.
        excluded: excluded-timestamps CSV path or table, or None.
        protocol: ``"activitynet"``, ``"mmaction2"`` or ``"pyslowfast"`` (see the module docstring).
        iou_threshold: a detection matches a ground-truth box of its class at IoU >= this.
        keyframe_unit: ``"second"`` (AVA) or ``"frame"`` (MicroG-4M); see :func:`read_ava_csv`.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    labelmap, gt, pred, excluded = _load(labelmap, gt, pred, excluded, keyframe_unit)
    if protocol != "activitynet":  # MMAction2 and PySlowFast key keyframes by int(timestamp)
        for table in (gt, pred, excluded):
            _require_integer_stamps(table, protocol)
    ids = np.array(sorted(i for i, _ in labelmap), np.int64)
    kg, kp, kx, kall = _keyframe_ids(gt, pred, excluded)
    g = np.flatnonzero(np.isin(gt.label, ids))
    _require_valid_boxes(gt, g, "ground-truth")
    g_eval = g[~np.isin(kg[g], kx)]
    counted = g if protocol == "mmaction2" else g_eval  # MMAction2 counts boxes on excluded keyframes too
    num_gt = np.bincount(np.searchsorted(ids, gt.label[counted]), minlength=len(ids))

    p = np.flatnonzero(np.isin(pred.label, ids))
    image = _first_seen_rank(kg[g] if protocol == "mmaction2" else kp[p], kp[p])  # the order images are scored in
    if protocol == "activitynet":
        kept, within = _activitynet_keep(kp[p], pred.score[p], pred.label[p], pred.boxes[p])
        on = kept & np.isin(kp[p], kall) & ~np.isin(kp[p], kx)  # keyframes the ground-truth file names
    elif protocol == "mmaction2":
        on = np.isin(kp[p], kg[g]) & ~np.isin(kp[p], kx)  # keyframes with a ground-truth box
        _require_valid_boxes(pred, p[on], "predicted")  # MMAction2 keeps zero-area boxes, fails on inverted ones
    else:
        on = ~np.isin(kp[p], kx)  # every keyframe: detections without ground truth are false positives
    if protocol != "mmaction2":  # the object-detection API drops boxes without area before matching
        b = pred.boxes[p]
        on &= (b[:, 1] < b[:, 3]) & (b[:, 0] < b[:, 2])
    # The order the reference meets detections in: by image, then in a keyframe by descending score (ties:
    # ActivityNet's heap order, MMAction2's file order) or, for PySlowFast, in file order.
    order = np.arange(int(on.sum()))
    if protocol == "activitynet":
        order = np.argsort(within[on], kind="stable")
    elif protocol == "mmaction2":
        order = np.argsort(-pred.score[p[on]], kind="stable")
    p, image = p[on], image[on]
    order = order[np.argsort(image[order], kind="stable")]
    seq = np.empty(len(p), np.int64)
    seq[order] = np.arange(len(p))
    g_order = np.arange(len(g_eval)) if protocol == "pyslowfast" else _rank_in_key(kg[g_eval], -_gscore(gt, g_eval))
    tp = _match(kp[p], pred.label[p], seq, pred.boxes[p], kg[g_eval], gt.label[g_eval], g_order,
                gt.boxes[g_eval], iou_threshold, np.float32 if protocol == "mmaction2" else np.float64)  # fmt: skip
    scores = pred.score[p].astype(np.float32) if protocol == "mmaction2" else pred.score[p]
    ap, num_det = _class_aps(ids, pred.label[p], order, scores, tp, num_gt, protocol)
    per_class = {int(i): float(a) for i, a in zip(ids, ap)}
    with np.errstate(invalid="ignore"):
        mean = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
    return FrameMAP(mean, per_class, int(np.isfinite(ap).sum()), {int(i): int(n) for i, n in zip(ids, num_gt)},
                    {int(i): int(n) for i, n in zip(ids, num_det)}, _ava_categories(labelmap, per_class),
                    protocol)  # fmt: skip


def _load(labelmap, gt, pred, excluded, keyframe_unit):
    labelmap = (
        [(int(i), str(n)) for i, n in labelmap] if isinstance(labelmap, list | tuple) else read_labelmap(labelmap)
    )
    gt = gt if isinstance(gt, AvaCsv) else read_ava_csv(gt, keyframe_unit=keyframe_unit)
    pred = pred if isinstance(pred, AvaCsv) else read_ava_csv(pred, keyframe_unit=keyframe_unit)
    if excluded is not None and not isinstance(excluded, AvaCsv):
        excluded = read_exclusions(excluded, keyframe_unit)
    return labelmap, gt, pred, excluded


def _require_integer_stamps(table, protocol):
    if table is None:
        return
    for stamps, lines in ((table.stamp, table.line), (table.key_stamp, None)):
        frac = stamps % _US != 0
        if frac.any():
            where = f":{lines[int(np.argmax(frac))]}" if lines is not None else ""
            raise InputError(f"{table.path}{where}: timestamp {stamps[int(np.argmax(frac))] / _US} is not an integer; "
                             f"the {protocol} protocol keys keyframes by int(timestamp)")  # fmt: skip


def _require_valid_boxes(table, rows, what):
    b = table.boxes[rows]
    bad = (b[:, 0] > b[:, 2]) | (b[:, 1] > b[:, 3])
    if bad.any():
        i = rows[int(np.argmax(bad))]
        raise InputError(f"{table.path}:{table.line[i]}: {what} box has x2 < x1 or y2 < y1")


def _keyframe_ids(gt, pred, excluded):
    """One int64 per (video, timestamp), comparable across the three files."""
    tables = [t for t in (gt, pred, excluded) if t is not None]
    names = np.array(sorted(set().union(*(t.videos for t in tables))), dtype=object)
    stamps = np.concatenate([np.concatenate([t.stamp, t.key_stamp]) for t in tables])
    lo, span = (int(stamps.min()), int(stamps.max()) - int(stamps.min()) + 1) if len(stamps) else (0, 1)
    if span * max(len(names), 1) >= 2**62:
        raise InputError("timestamps span too wide a range")

    def ids(t, video, stamp):
        vmap = np.searchsorted(names, np.array(t.videos, dtype=object)).astype(np.int64)
        return vmap[video] * span + (stamp - lo) if len(video) else np.zeros(0, np.int64)

    kx = ids(excluded, excluded.key_video, excluded.key_stamp) if excluded is not None else np.zeros(0, np.int64)
    return ids(gt, gt.video, gt.stamp), ids(pred, pred.video, pred.stamp), kx, ids(gt, gt.key_video, gt.key_stamp)


def _gscore(gt, rows):
    s = gt.score[rows]
    return np.where(np.isnan(s), 1.0, s)  # column 8 of a ground-truth row (the person id), else 1.0


def _rank_in_key(keys, sortkey):
    """Rank of each row within its keyframe, ordered by ``sortkey`` then file order (a stable sort)."""
    o = np.lexsort((np.arange(len(keys)), sortkey, keys))
    start = np.concatenate([[True], keys[o][1:] != keys[o][:-1]]) if len(o) else np.zeros(0, bool)
    first = np.flatnonzero(start)
    rank = np.empty(len(keys), np.int64)
    rank[o] = np.arange(len(keys)) - first[np.cumsum(start) - 1]
    return rank


def _first_seen_rank(order_keys, keys):
    """For each of ``keys``: the rank of its first appearance in ``order_keys`` (the file order of images)."""
    u, first = np.unique(order_keys, return_index=True)
    rank = np.empty(len(u), np.int64)
    rank[np.argsort(first)] = np.arange(len(u))
    return rank[np.minimum(np.searchsorted(u, keys), max(len(u) - 1, 0))] if len(u) else np.zeros(len(keys), int)


def _activitynet_keep(keys, score, label, boxes, cap=ACTIVITYNET_CAPACITY):
    """The ActivityNet reader's top-``cap`` heap per keyframe: kept rows and their order (descending score).

    Where ties make it matter (at the capacity boundary, or equal scores of one class in one keyframe) the
    keyframe is replayed through the same binary heap, whose layout decides the reference's order of ties.
    """
    n = len(keys)
    o = np.argsort(-score, kind="stable")
    o = o[np.argsort(keys[o], kind="stable")]  # by keyframe, then descending score, then file order
    start = np.concatenate([[True], keys[o][1:] != keys[o][:-1]]) if n else np.zeros(0, bool)
    first = np.flatnonzero(start)
    count = np.diff(np.append(first, n))
    rank_sorted = np.arange(n) - first[np.cumsum(start) - 1]
    seq = np.empty(n, np.int64)
    seq[o] = rank_sorted
    kept = np.zeros(n, bool)
    kept[o[rank_sorted < cap]] = True
    big = np.flatnonzero(count > cap)
    replay = set(big[score[o[first[big] + cap - 1]] == score[o[first[big] + cap]]].tolist())
    k = np.flatnonzero(kept)
    d = k[np.lexsort((score[k], label[k], keys[k]))]
    same = (keys[d][1:] == keys[d][:-1]) & (label[d][1:] == label[d][:-1]) & (score[d][1:] == score[d][:-1])
    replay.update(np.searchsorted(keys[o][first], keys[d][1:][same]).tolist())
    for grp in sorted(replay):
        rows = np.sort(o[first[grp] : first[grp] + count[grp]])
        order = _heap_replay(rows, score, label, boxes, cap)
        kept[rows] = False
        kept[order] = True
        seq[order] = np.arange(len(order))
    return kept, seq


def _heap_replay(rows, score, label, boxes, cap):
    """Rows kept by a size-``cap`` min-heap of ``(score, id, y1, x1, y2, x2)`` tuples, sorted by descending score
    with ties in heap-array order (the binary heap of Python's heapq: sift up on push, bottom-up on replace)."""
    items = list(zip(score[rows].tolist(), label[rows].tolist(), *(boxes[rows, j].tolist() for j in (1, 0, 3, 2))))
    heap = []
    for item in items:
        if len(heap) < cap:
            heap.append(item)
            _sift_toward_root(heap, 0, len(heap) - 1)
        elif item[0] > heap[0][0]:
            pos, end = 0, len(heap)
            child = 1
            while child < end:  # move the smaller child up until a leaf, then place the item and sift it up
                if child + 1 < end and not heap[child] < heap[child + 1]:
                    child += 1
                heap[pos] = heap[child]
                pos, child = child, 2 * child + 1
            heap[pos] = item
            _sift_toward_root(heap, 0, pos)
    where = {}
    for r, item in zip(rows.tolist(), items):
        where.setdefault(item, []).append(r)
    return np.array([where[item].pop() for item in sorted(heap, key=lambda t: -t[0])], np.int64)


def _sift_toward_root(heap, root, pos):
    item = heap[pos]
    while pos > root:
        parent = (pos - 1) >> 1
        if item < heap[parent]:
            heap[pos] = heap[parent]
            pos = parent
        else:
            break
    heap[pos] = item


def _match(dkey, dcls, dseq, dbox, gkey, gcls, gseq, gbox, thr, dtype):
    """True positives: per (keyframe, class), detections in ``dseq`` order each take their highest-IoU box of the
    class (first on ties); a detection is a true positive if that IoU >= ``thr`` and the box was not taken."""
    nd = len(dkey)
    if nd == 0 or len(gkey) == 0:
        return np.zeros(nd, bool)
    _, dense = np.unique(np.concatenate([dkey, gkey]), return_inverse=True)
    cls = np.unique(np.concatenate([dcls, gcls]))
    width = len(cls)
    dgroup = dense[:nd] * width + np.searchsorted(cls, dcls)
    ggroup = dense[nd:] * width + np.searchsorted(cls, gcls)
    go = np.lexsort((gseq, ggroup))
    lo, hi = np.searchsorted(ggroup[go], dgroup, "left"), np.searchsorted(ggroup[go], dgroup, "right")
    cnt = hi - lo
    rep = np.repeat(np.arange(nd), cnt)  # one row per (detection, candidate box) pair
    offs = np.cumsum(cnt) - cnt
    gi = go[lo[rep] + np.arange(len(rep)) - offs[rep]]
    iou = _iou(dbox[rep], gbox[gi], dtype)
    best = np.full(nd, -1.0)
    has = cnt > 0
    if has.any():
        best[has] = np.maximum.reduceat(iou, offs[has])  # nan propagates: the reference's argmax picks it, and fails
    ok = best >= thr
    cand = np.flatnonzero((iou == best[rep]) & ok[rep])
    firsts = cand[np.concatenate([[True], rep[cand][1:] != rep[cand][:-1]])] if len(cand) else cand
    target = np.full(nd, -1, np.int64)
    target[rep[firsts]] = gi[firsts]
    v = np.flatnonzero(target >= 0)
    v = v[np.lexsort((dseq[v], target[v]))]
    tp = np.zeros(nd, bool)
    if len(v):
        tp[v[np.concatenate([[True], target[v][1:] != target[v][:-1]])]] = True
    return tp


def _iou(d, g, dtype):
    """IoU of paired x1,y1,x2,y2 boxes with the references' arithmetic: coordinates in ``dtype`` (float32 for
    MMAction2), clipped overlaps and their product in float64, ``(area_d + area_g) - overlap`` then a division."""
    d, g = d.astype(dtype, copy=False), g.astype(dtype, copy=False)
    h = np.maximum((np.minimum(d[:, 3], g[:, 3]) - np.maximum(d[:, 1], g[:, 1])).astype(np.float64), 0.0)
    w = np.maximum((np.minimum(d[:, 2], g[:, 2]) - np.maximum(d[:, 0], g[:, 0])).astype(np.float64), 0.0)
    inter = h * w
    area_d = (d[:, 3] - d[:, 1]) * (d[:, 2] - d[:, 0])
    area_g = (g[:, 3] - g[:, 1]) * (g[:, 2] - g[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / ((area_d + area_g) - inter)


def _class_aps(ids, label, order, scores, tp, num_gt, protocol):
    """Per-class AP over each class's detections concatenated in ``order`` (as the reference concatenates them)."""
    cls = np.searchsorted(ids, label).astype(np.int16 if len(ids) < 2**15 else np.int64)
    o = order[np.argsort(cls[order], kind="stable")]  # radix sort on small integers
    bounds = np.searchsorted(cls[o], np.arange(len(ids)), "left"), np.searchsorted(cls[o], np.arange(len(ids)), "right")
    ap, num_det = np.full(len(ids), np.nan), bounds[1] - bounds[0]
    for c in range(len(ids)):
        sel = o[bounds[0][c] : bounds[1][c]]
        if protocol == "mmaction2" and len(sel) == 0:
            continue  # MMAction2 scores only the classes that have a detection on an evaluated keyframe
        ap[c] = _voc_ap(scores[sel], tp[sel], int(num_gt[c]))
    return ap, num_det


def _voc_ap(scores, tp, num_gt: int) -> float:
    """PASCAL VOC all-point AP of one class (nan without ground truth), ranking by ``np.argsort(scores)[::-1]``."""
    if num_gt == 0:
        return float("nan")
    hits = tp[np.argsort(scores)[::-1]].astype(np.int64)
    if hits.size == 0:
        return 0.0
    ctp, cfp = np.cumsum(hits), np.cumsum(1 - hits)
    recall = np.concatenate([[0.0], ctp / num_gt, [1.0]])
    precision = np.concatenate([[0.0], ctp / (ctp + cfp), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    i = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[i] - recall[i - 1]) * precision[i]))


def is_ava_labelmap(labelmap) -> bool:
    """Whether every (id, name) is one of AVA's 80 actions (the full list or a subset such as the 60 evaluated)."""

    def norm(s):
        return "".join(ch for ch in s.lower() if ch.isalnum())

    return all(1 <= i <= 80 and norm(n) == norm(AVA_ACTION_NAMES[i - 1]) for i, n in labelmap)


def _ava_categories(labelmap, per_class) -> dict[str, float]:
    if not is_ava_labelmap(labelmap):
        return {}
    out = {}
    for name, lo, hi in AVA_CATEGORIES:
        aps = [a for i, a in per_class.items() if lo <= i <= hi and np.isfinite(a)]
        out[name] = float(np.mean(aps)) if aps else float("nan")
    return out


# ----------------------------------------------------------------------------------------------- MicroG-4M
class MicroGMetrics(NamedTuple):
    """MicroG-4M's box-level macro metrics (see :func:`microg_metrics`)."""

    f1_macro: float
    recall_macro: float
    auroc_macro: float
    num_boxes: int
    auroc_classes: int  # classes whose column holds both a positive and a negative box
    threshold: float  # applied to the scores as written in the file


def microg_metrics(
    gt, pred, labelmap, threshold_on: str = "logits", score_kind: str = "auto", keyframe_unit: str = "second"
) -> MicroGMetrics:
    """Macro F1 / recall / AUROC over predicted boxes, as MicroG-4M's ``evaluate_ava`` computes them.

    Every predicted box (the rows of one keyframe with the same coordinates; the k-th row of a class is the k-th
    box) gets a score per label-map class (a class it has no row for scores lowest) and a 0/1 truth per class:
    1 if any ground-truth row of its keyframe has that class, whatever the box (no IoU matching; excluded
    keyframes are not removed). Predictions are ``score >= threshold``; F1 and recall are macro means over all
    classes with 0 for an undefined ratio; AUROC is the macro mean over the classes whose column holds both
    values (0.0 if none), with tied scores counting one half, like scikit-learn's ``roc_auc_score``.

    MicroG-4M's published numbers apply 0.5 to raw logits (``threshold_on="logits"``), i.e. a probability
    threshold of sigmoid(0.5) = 0.6225; ``threshold_on="probabilities"`` applies 0.5 to probabilities.
    ``score_kind`` says what the file holds (``"auto"``: logits if any score lies outside [0, 1]).
    """
    if threshold_on not in ("logits", "probabilities") or score_kind not in ("auto", "logits", "probabilities"):
        raise InputError("threshold_on must be 'logits' or 'probabilities'; score_kind also 'auto'")
    labelmap, gt, pred, _ = _load(labelmap, gt, pred, None, keyframe_unit)
    ids = np.array(sorted(i for i, _ in labelmap), np.int64)
    kg, kp, _, _ = _keyframe_ids(gt, pred, None)
    g, p = np.flatnonzero(np.isin(gt.label, ids)), np.flatnonzero(np.isin(pred.label, ids))
    score = pred.score[p]
    if np.isnan(score).any():
        raise InputError(f"{pred.path}: every prediction row needs a score (column 8)")
    if score_kind == "auto":
        score_kind = "logits" if ((score < 0) | (score > 1)).any() else "probabilities"
    threshold = 0.5 if score_kind == threshold_on else (0.0 if score_kind == "logits" else 1 / (1 + np.exp(-0.5)))
    keys, col, boxes = kp[p], np.searchsorted(ids, pred.label[p]), pred.boxes[p]
    n = len(p)
    run = np.cumsum(np.concatenate([[True], (keys[1:] != keys[:-1]) | (boxes[1:] != boxes[:-1]).any(1)])) - 1
    occurrence = _rank_in_key(run * len(ids) + col, np.zeros(n)) if n else np.zeros(0, np.int64)
    box_id = np.unique(run * (int(occurrence.max(initial=0)) + 1) + occurrence, return_inverse=True)[1].ravel()
    num_boxes = int(box_id.max(initial=-1)) + 1
    scores = np.full((num_boxes, len(ids)), -np.inf)
    scores[box_id, col] = score
    box_key = np.zeros(num_boxes, np.int64)
    box_key[box_id] = keys
    _, dense = np.unique(np.concatenate([box_key, kg[g]]), return_inverse=True)
    truth_codes = dense[num_boxes:] * len(ids) + np.searchsorted(ids, gt.label[g])
    y_true = np.isin(dense[:num_boxes, None] * len(ids) + np.arange(len(ids)), truth_codes)
    f1, recall = f1_recall_per_class(y_true, scores >= threshold)
    auroc, kept = macro_auroc(y_true, scores)
    return MicroGMetrics(float(f1.mean()), float(recall.mean()), auroc, num_boxes, kept, float(threshold))


def f1_recall_per_class(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column F1 and recall of 0/1 matrices (N, C); an undefined ratio is 0 (``zero_division=0``)."""
    y_true, y_pred = y_true.astype(bool), y_pred.astype(bool)
    tp = (y_true & y_pred).sum(0)
    fp = (~y_true & y_pred).sum(0)
    fn = (y_true & ~y_pred).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
    return f1, recall


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of one binary column (Mann-Whitney statistic; ties count one half)."""
    y_true = y_true.astype(bool)
    npos, n = int(y_true.sum()), len(y_true)
    if npos == 0 or npos == n:
        raise InputError("AUROC needs both positive and negative samples")
    o = np.argsort(scores, kind="stable")
    s = scores[o]
    start = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    end = np.append(start[1:], n)
    ranks = np.empty(n)
    ranks[o] = np.repeat((start + end + 1) / 2.0, end - start)  # 1-based average rank of each tie group
    return float((ranks[y_true].sum() - npos * (npos + 1) / 2.0) / (npos * (n - npos)))


def macro_auroc(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """Mean AUROC over the columns that hold both 0 and 1 (0.0 if none), and how many there were."""
    positives = y_true.astype(bool).sum(0)
    cols = np.flatnonzero((positives > 0) & (positives < len(y_true)))
    if len(cols) == 0:
        return 0.0, 0
    return float(np.mean([roc_auc(y_true[:, c], scores[:, c]) for c in cols])), len(cols)


# ----------------------------------------------------------------------------------------------- command line
def run_eval_ava(
    gt,
    pred,
    labelmap,
    exclude=None,
    protocol: str = "activitynet",
    microg: bool = False,
    threshold_on: str = "logits",
    keyframe_unit: str = "second",
    out=None,
    iou_threshold: float = 0.5,
):
    """``vidlab eval-ava``: print a per-class table (id, name, AP, #gt, #det) and, last, a ``RESULT`` line.

    Returns ``(FrameMAP, MicroGMetrics or None)``; ``out`` names a per-class CSV to write.
    """
    names = read_labelmap(labelmap)
    gt_t, pred_t = read_ava_csv(gt, keyframe_unit=keyframe_unit), read_ava_csv(pred, keyframe_unit=keyframe_unit)
    res = frame_map(gt_t, pred_t, names, exclude, protocol, iou_threshold, keyframe_unit)
    rows = [(i, n, res.per_class[i], res.num_gt[i], res.num_det[i]) for i, n in sorted(names)]
    print(f"{'id':>4}  {'name':<40}  {'AP':>8}  {'#gt':>7}  {'#det':>9}")
    for i, n, ap, ngt, ndet in rows:
        print(f"{i:>4}  {n[:40]:<40}  {ap:>8.4f}  {ngt:>7}  {ndet:>9}")
    for cat, value in res.categories.items():
        print(f"{cat} mAP: {value:.4f}")
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            f.write("id,name,ap,num_gt,num_det\n")
            f.writelines(
                f'{i},"{n.replace(chr(34), chr(34) * 2)}",{ap!r},{ngt},{ndet}\n' for i, n, ap, ngt, ndet in rows
            )
    result = f"RESULT mAP@{iou_threshold:g}={res.map:.6f} classes={res.num_classes}"
    extra = None
    if microg:
        extra = microg_metrics(gt_t, pred_t, names, threshold_on, keyframe_unit=keyframe_unit)
        result += f" f1_macro={extra.f1_macro:.6f} recall_macro={extra.recall_macro:.6f}"
        result += f" auroc_macro={extra.auroc_macro:.6f}"
    print(f"protocol: {protocol}; {len(pred_t.label)} prediction rows, {len(gt_t.label)} ground-truth rows")
    print(result)
    return res, extra
