"""Write tests/assets/ava_eval_fixtures.json: the reference AVA evaluators' results on generated files.

The files come from :func:`generate_case` / :func:`generate_microg_case` (deterministic in the seed; the test
regenerates them, so no CSV is stored). Two steps, each in the environment that holds its references::

    # frame-mAP: MMAction2 1.2.0, and scratch copies (never committed) of PySlowFast's slowfast/utils/ava_eval_helper.py
    # (with ava_evaluation/ importable as vision.fair.slowfast.ava_evaluation and small stubs for
    # slowfast.utils.distributed / slowfast.utils.env) and of ActivityNet's Evaluation/ folder
    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_ava_eval_fixtures.py detection \\
        --pyslowfast /tmp/pysf --activitynet /tmp/anet/Evaluation
    # MicroG-4M's box-level metrics: scikit-learn's f1_score / recall_score / roc_auc_score
    /tmp/refs/ptv/bin/python tests/assets/make_ava_eval_fixtures.py microg

References, as run here:

- ActivityNet ``get_ava_performance.run_evaluation`` (current version: no exclusion file). Excluded keyframes are
  removed from both files beforehand, which is what its 2019 version (and PySlowFast) did with them.
- MMAction2 ``ava_utils.ava_eval`` with ``ignore_empty_frames=True`` (AVAMetric's call). Its process pool is
  replaced by a serial map (``pool.map`` keeps order, so the result is the same) and ``np.NAN`` is restored
  (NumPy 2 removed it; MMAction2 reaches it for a class with detections but no ground truth).
- PySlowFast ``read_labelmap`` / ``read_exclusions`` / ``read_csv`` / ``run_evaluation`` (what
  ``evaluate_ava_from_files`` calls; ``evaluate_ava`` runs the same ``run_evaluation`` on in-memory arrays).
- MicroG-4M: the metric part of its ``evaluate_ava`` (HAR-in-Space, code/PySlowFast_for_HAR), rewritten here over
  the generated arrays: one row per predicted box with a score per class, truth = the (keyframe, class) pairs of
  the ground truth, ``y_pred = score >= 0.5``, scikit-learn's macro F1 / recall (``zero_division=0``) and macro
  ``roc_auc_score`` over the columns holding both values.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("ava_eval_fixtures.json")
ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
AVA_NAMES_SUBSET = {1: "bend/bow (at the waist)", 3: "crouch/kneel", 8: "lie/sleep", 12: "stand", 14: "walk",
                    17: "carry/hold (an object)", 27: "drink", 48: "read", 59: "touch (an object)",
                    64: "fight/hit (a person)", 74: "listen to (a person)",
                    79: "talk to (e.g., self, a person, a group)", 80: "watch (a person)"}  # fmt: skip

# (seed, options): every combination the protocols treat differently appears in some case.
DETECTION_CASES = [
    (0, {}),
    (1, {"shuffle": True}),
    (2, {"persons": 6, "classes_per_box": 1.0}),  # > 50 detections on some keyframes: ActivityNet's capacity
    (3, {"shuffle": True, "zero_area": True}),
    (4, {"tie_decimals": 2}),
    (5, {"tie_decimals": 3, "persons": 6, "classes_per_box": 1.0, "shuffle": True}),
    (6, {"empty_rows": True}),
    (7, {"inverted": True}),
    (8, {"keyframe_unit": "frame", "shuffle": True}),
    (9, {"n_classes": 4, "extra_classes": 1, "shuffle": True}),
    (10, {"tie_decimals": 1, "persons": 4}),
    (11, {"n_videos": 6, "n_seconds": 60, "shuffle": True}),
    (12, {"tie_decimals": 2, "persons": 7, "classes_per_box": 1.0}),
    (13, {"ava_names": True}),
]
MICROG_CASES = [(100, {}), (101, {"tie_decimals": 1}), (102, {"n_classes": 6, "logits": False}), (103, {"persons": 1})]
FUNCTION_CASES = [(200, {}), (201, {"tie_decimals": 1}), (202, {"constant_columns": True}), (203, {"n": 7, "c": 3})]


def _video_ids(rng, n):
    return ["".join(rng.choice(ALPHABET, 11)) for _ in range(n)]


def generate_case(seed: int, **opt) -> dict:
    """Ground truth, predictions, excluded keyframes and a label map as lists of CSV / pbtxt lines.

    Keyframes with and without ground truth, ground truth only in classes outside the label map, a whitelisted
    class never predicted and one never in the ground truth, detections on keyframes that the ground truth does
    not name, excluded keyframes with ground truth on them, two timestamp spellings (``0902`` / ``902``).
    """
    rng = np.random.default_rng(seed)
    n_videos, n_seconds = opt.get("n_videos", 3), opt.get("n_seconds", 30)
    n_classes, extra = opt.get("n_classes", 10), opt.get("extra_classes", 3)
    if opt.get("ava_names"):
        ids = sorted(AVA_NAMES_SUBSET)
        labelmap = [(i, AVA_NAMES_SUBSET[i]) for i in ids]
        outside = [2, 40, 77]
    else:
        all_ids = rng.choice(np.arange(1, 81), n_classes + extra, replace=False)
        ids, outside = sorted(all_ids[:n_classes].tolist()), sorted(all_ids[n_classes:].tolist())
        labelmap = [(i, f"action {i} ({'abc'[i % 3]})") for i in ids]
    labels = np.array(ids + outside)
    never_predicted, never_in_gt = ids[0], ids[-1]
    frame = opt.get("keyframe_unit") == "frame"
    fmt = "{:d}" if frame else "{:04d}"
    gt, pred, empty = [], [], []
    keyframes = []
    for video in _video_ids(rng, n_videos):
        base = 0 if frame else 902
        stamps = np.sort(rng.choice(np.arange(base, base + 3 * n_seconds), n_seconds, replace=False))
        keyframes += [(video, int(s)) for s in stamps]
    for k, (video, stamp) in enumerate(keyframes):
        ts_gt, ts_pred = fmt.format(stamp), (str(stamp) if k % 3 == 0 else fmt.format(stamp))
        n_persons = int(rng.integers(0, opt.get("persons", 4) + 1))
        if n_persons == 0 and opt.get("empty_rows") and k % 2 == 0:
            empty.append(f"{video},{ts_gt}")
        persons = []
        for pid in range(n_persons):
            x1, y1 = rng.random(2) * 0.7
            w, h = 0.05 + rng.random(2) * 0.25
            box = np.round([x1, y1, x1 + w, y1 + h], 3)
            acts = rng.choice(labels, int(rng.integers(1, 4)), replace=False)
            acts = [a for a in acts if a != never_in_gt]
            persons.append((box, acts))
            for a in acts:
                gt.append(f"{video},{ts_gt},{box[0]:.3f},{box[1]:.3f},{box[2]:.3f},{box[3]:.3f},{a},{pid}")
        dets = []
        for box, acts in persons + [(None, [])] * int(rng.integers(0, 3)):
            if box is None:
                x1, y1 = rng.random(2) * 0.7
                box = np.array([x1, y1, x1 + 0.1 + rng.random() * 0.2, y1 + 0.1 + rng.random() * 0.2])
            elif rng.random() < 0.1:
                continue  # a missed person
            else:
                box = box + rng.normal(0, 0.03, 4)
                box[2:] = np.maximum(box[2:], box[:2] + 0.01)
            if opt.get("zero_area") and rng.random() < 0.1:
                box[2] = box[0]
            if opt.get("inverted") and rng.random() < 0.05:
                box[[0, 2]] = box[[2, 0]]
            for c in labels:
                if c == never_predicted or rng.random() > opt.get("classes_per_box", 0.6):
                    continue
                s = rng.random() * 0.7 + (0.3 if c in acts else 0.0)
                dets.append((box, c, s))
        for box, c, s in dets:
            s = round(s, opt["tie_decimals"]) if "tie_decimals" in opt else s
            pred.append(f"{video},{ts_pred},{box[0]:.4f},{box[1]:.4f},{box[2]:.4f},{box[3]:.4f},{c},{float(s)!r}")
    order = rng.permutation(len(pred)) if opt.get("shuffle") else np.arange(len(pred))
    excluded = [f"{v},{fmt.format(s)}" for v, s in keyframes if rng.random() < 0.08]
    excluded.append(f"{_video_ids(rng, 1)[0]},{fmt.format(950)}")
    return {
        "labelmap": labelmap,
        "gt": gt,
        "gt_empty_rows": empty,
        "pred": [pred[i] for i in order],
        "excluded": excluded,
        "keyframe_unit": "frame" if frame else "second",
    }


def write_case(case: dict, folder, empty_rows: bool = False) -> dict:
    """Write the case's files (label map in the canonical layout the references' line readers need)."""
    folder = Path(folder)
    paths = {k: folder / f"{k}.csv" for k in ("gt", "pred", "excluded")}
    paths["labelmap"] = folder / "labelmap.pbtxt"
    paths["gt"].write_text("\n".join(case["gt"] + (case["gt_empty_rows"] if empty_rows else [])) + "\n")
    paths["pred"].write_text("\n".join(case["pred"]) + "\n")
    if case["excluded"]:
        paths["excluded"].write_text("\n".join(case["excluded"]) + "\n")
    else:
        paths["excluded"] = None
    paths["labelmap"].write_text("".join(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n' for i, n in case["labelmap"]))
    return paths


WORKED_EXAMPLE = {
    # docs/ava_evaluation.md walks through it. Classes "sit" (11), "stand" (12), "walk" (14); 80 is not in the map.
    # v1,0902: two people standing, B also sitting; person A's better detection comes after a weaker one in the file.
    # v1,0903: the ground-truth file names it, but only with a class outside the label map.
    "labelmap": [(11, "sit"), (12, "stand"), (14, "walk")],
    "gt": [
        "v1,0902,0.10,0.10,0.40,0.90,12,0",
        "v1,0902,0.55,0.10,0.85,0.90,12,1",
        "v1,0902,0.55,0.10,0.85,0.90,11,1",
        "v1,0903,0.60,0.10,0.90,0.90,80,2",
    ],
    "gt_empty_rows": [],
    "pred": [
        "v1,0902,0.12,0.12,0.42,0.88,12,0.30",  # person A, weaker
        "v1,0902,0.11,0.10,0.41,0.90,12,0.90",  # person A, stronger
        "v1,0902,0.56,0.12,0.86,0.88,12,0.20",  # person B
        "v1,0902,0.56,0.12,0.86,0.88,14,0.80",  # "walk": no ground truth anywhere
        "v1,0903,0.10,0.10,0.40,0.90,12,0.60",  # a keyframe without ground truth of the label map
    ],
    "excluded": [],
    "keyframe_unit": "second",
}


# ------------------------------------------------------------------------------------------- references
def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _clean(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def ref_mmaction2(paths):
    import refshim  # noqa: F401  (must precede mmaction)
    from mmaction.evaluation.functional import ava_utils

    np.NAN = np.nan  # removed in NumPy 2; MMAction2 returns it for a class without ground truth

    class SerialPool:
        def __init__(self, *a):
            pass

        def map(self, f, xs):
            return [f(x) for x in xs]

    ava_utils.multiprocessing.Pool = SerialPool
    per_class, original = {}, ava_utils.metrics.compute_average_precision

    def capture(precision, recall):
        ap = original(precision, recall)
        per_class[int(sys._getframe(1).f_locals["k"])] = _clean(ap)  # the caller's loop variable: the class id
        return ap

    ava_utils.metrics.compute_average_precision = capture
    try:
        with _quiet():
            res = ava_utils.ava_eval(str(paths["pred"]), "mAP", str(paths["labelmap"]), str(paths["gt"]),
                                     str(paths["excluded"]) if paths["excluded"] else None, verbose=False)  # fmt: skip
    except Exception as e:  # noqa: BLE001  (a reference failure is a recorded outcome)
        return {"error": type(e).__name__}
    finally:
        ava_utils.metrics.compute_average_precision = original
    return {"map": _clean(res["overall"]), "per_class": per_class,
            "categories": {k: _clean(v) for k, v in res.items() if k != "overall"}}  # fmt: skip


def _capture_evaluation(module):
    cls, box = module.ObjectDetectionEvaluation, {}
    original = cls.evaluate

    def evaluate(self):
        out = original(self)
        box["ap"], box["mean"] = out[0].copy(), out[1]
        return out

    cls.evaluate = evaluate
    return box


def ref_pyslowfast(paths, root):
    if root not in sys.path:
        sys.path.insert(0, root)
    from slowfast.utils import ava_eval_helper as h
    from vision.fair.slowfast.ava_evaluation import object_detection_evaluation

    box = _capture_evaluation(object_detection_evaluation)
    categories, whitelist = h.read_labelmap(str(paths["labelmap"]))
    excluded = h.read_exclusions(str(paths["excluded"]) if paths["excluded"] else None)
    try:
        gt = h.read_csv(str(paths["gt"]), whitelist, load_score=False)
        det = h.read_csv(str(paths["pred"]), whitelist, load_score=True)
        with _quiet():
            metrics = h.run_evaluation(categories, gt, det, excluded, verbose=False)
    except Exception as e:  # noqa: BLE001
        return {"error": type(e).__name__}
    per_class = {int(c["id"]): _clean(box["ap"][c["id"] - 1]) for c in categories}
    return {"map": _clean(metrics["PascalBoxes_Precision/mAP@0.5IOU"]), "per_class": per_class}


def ref_activitynet(paths, root):
    for p in (root, str(Path(root) / "ava")):
        if p not in sys.path:
            sys.path.insert(0, p)
    import logging

    import get_ava_performance as g

    np.float = float  # removed in NumPy 1.24; the ActivityNet metrics check dtypes against it

    logging.getLogger().setLevel(logging.ERROR)
    box = _capture_evaluation(g.object_detection_evaluation)
    with tempfile.TemporaryDirectory() as tmp:
        excluded = set()
        if paths["excluded"]:
            excluded = {g.make_image_key(r[0], r[1]) for r in csv.reader(open(paths["excluded"]))}
        files = {}
        for k in ("gt", "pred"):  # drop the rows of excluded keyframes (the 2019 script's exclusion)
            rows = [r for r in csv.reader(open(paths[k])) if g.make_image_key(r[0], r[1]) not in excluded]
            files[k] = Path(tmp) / f"{k}.csv"
            files[k].write_text("".join(",".join(r) + "\n" for r in rows))
        categories = g.read_labelmap(open(paths["labelmap"]))[0]
        try:
            with _quiet(), open(paths["labelmap"]) as lm, open(files["gt"]) as gf, open(files["pred"]) as pf:
                g.run_evaluation(lm, gf, pf)
        except Exception as e:  # noqa: BLE001
            return {"error": type(e).__name__}
    per_class = {int(c["id"]): _clean(box["ap"][c["id"] - 1]) for c in categories}
    return {"map": _clean(box["mean"]), "per_class": per_class}


def detection_fixtures(args) -> list:
    out = []
    for seed, opt in [("worked_example", {})] + DETECTION_CASES:
        case = WORKED_EXAMPLE if seed == "worked_example" else generate_case(seed, **opt)
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_case(case, tmp)
            entry = {"seed": seed, "options": opt, "num_pred_rows": len(case["pred"]),
                     "num_gt_rows": len(case["gt"]), "mmaction2": ref_mmaction2(paths),
                     "pyslowfast": ref_pyslowfast(paths, args.pyslowfast)}  # fmt: skip
            if case["gt_empty_rows"]:  # only ActivityNet's reader accepts two-column rows
                paths = write_case(case, tmp, empty_rows=True)
            entry["activitynet"] = ref_activitynet(paths, args.activitynet)
        print(seed, {k: entry[k].get("map", entry[k].get("error")) for k in ("activitynet", "mmaction2", "pyslowfast")})
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------- MicroG-4M
def generate_microg_case(seed: int, **opt) -> dict:
    """MicroG-4M-style files: every predicted box has one row per label-map class, scores as raw logits."""
    rng = np.random.default_rng(seed)
    n_classes = opt.get("n_classes", 12)
    ids = sorted(rng.choice(np.arange(1, 81), n_classes, replace=False).tolist())
    gt, pred, boxes = [], [], []
    for video in _video_ids(rng, 3):
        for frame in np.sort(rng.choice(np.arange(0, 200), 25, replace=False)):
            acts_here = set()
            for pid in range(int(rng.integers(0, opt.get("persons", 3) + 1))):
                x1, y1 = np.round(rng.random(2) * 0.7, 3)
                for a in rng.choice(ids, int(rng.integers(1, 3)), replace=False):
                    gt.append(f"{video},{frame:04d},{x1:.3f},{y1:.3f},{x1 + 0.2:.3f},{y1 + 0.2:.3f},{a},{pid}")
                    acts_here.add(int(a))
            for _ in range(int(rng.integers(1, 4))):
                x1, y1 = rng.random(2) * 0.7
                logits = rng.normal(-2.0, 2.0, n_classes) + np.array([2.5 * (i in acts_here) for i in ids])
                scores = logits if opt.get("logits", True) else 1 / (1 + np.exp(-logits))
                if "tie_decimals" in opt:
                    scores = np.round(scores, opt["tie_decimals"])
                texts = [f"{s:.4f}" for s in scores]  # MicroG-4M's write_results: %.03f boxes, %.04f scores
                boxes.append((f"{video},{frame:04d}", [float(t) for t in texts]))
                pred += [f"{video},{frame:04d},{x1:.3f},{y1:.3f},{x1 + 0.3:.3f},{y1 + 0.3:.3f},{c},{t}"
                         for c, t in zip(ids, texts)]  # fmt: skip
    return {"labelmap": [(i, f"action {i}") for i in ids], "gt": gt, "gt_empty_rows": [], "pred": pred,
            "excluded": [], "keyframe_unit": "frame", "boxes": boxes}  # fmt: skip


def ref_microg(case, threshold=0.5) -> dict:
    """MicroG-4M's F1 / recall / AUROC block over the generated boxes (scikit-learn)."""
    from sklearn.metrics import f1_score, recall_score, roc_auc_score

    ids = [i for i, _ in case["labelmap"]]
    truth = set()
    for row in case["gt"]:
        r = row.split(",")
        truth.add((f"{r[0]},{int(r[1]):04d}", int(r[6])))
    y_scores = np.array([s for _, s in case["boxes"]])
    y_true = np.array([[int((key, c) in truth) for c in ids] for key, _ in case["boxes"]])
    y_pred = (y_scores >= threshold).astype(int)
    keep = [c for c in range(len(ids)) if 0 < y_true[:, c].sum() < len(y_true)]
    auroc = roc_auc_score(y_true[:, keep], y_scores[:, keep], average="macro") if keep else 0.0
    return {"f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "recall_macro": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
            "auroc_macro": float(auroc), "num_boxes": len(y_true)}  # fmt: skip


def generate_function_case(seed: int, n: int = 60, c: int = 7, tie_decimals=None, constant_columns=False):
    """Random (y_true, y_score) matrices for the metric functions."""
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, c)) < rng.random(c)).astype(int)
    y_score = rng.normal(size=(n, c)) + y_true
    if tie_decimals is not None:
        y_score = np.round(y_score, tie_decimals)
    if constant_columns:
        y_true[:, 0], y_true[:, 1] = 0, 1
    return y_true, y_score


def ref_functions(y_true, y_score) -> dict:
    from sklearn.metrics import f1_score, recall_score, roc_auc_score

    y_pred = (y_score >= 0.5).astype(int)
    keep = [c for c in range(y_true.shape[1]) if 0 < y_true[:, c].sum() < len(y_true)]
    return {"f1": f1_score(y_true, y_pred, average=None, zero_division=0).tolist(),
            "recall": recall_score(y_true, y_pred, average=None, zero_division=0).tolist(),
            "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "recall_macro": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
            "auroc": {str(c): float(roc_auc_score(y_true[:, c], y_score[:, c])) for c in keep}}  # fmt: skip


def microg_fixtures() -> dict:
    cases = []
    for seed, opt in MICROG_CASES:
        case = generate_microg_case(seed, **opt)
        entry = {"seed": seed, "options": opt, "logits_threshold_0.5": ref_microg(case)}
        entry["probability_threshold_0.5"] = ref_microg(case, 0.0 if opt.get("logits", True) else 0.5)
        cases.append(entry)
        print(seed, entry["logits_threshold_0.5"])
    functions = [{"seed": s, "options": o, **ref_functions(*generate_function_case(s, **o))} for s, o in FUNCTION_CASES]
    return {"microg": cases, "functions": functions}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["detection", "microg"])
    ap.add_argument("--pyslowfast", help="scratch folder holding slowfast/utils/ava_eval_helper.py")
    ap.add_argument("--activitynet", help="scratch copy of ActivityNet's Evaluation/ folder")
    args = ap.parse_args()
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.part == "detection":
        import mmaction

        data["detection"] = detection_fixtures(args)
        data["versions_detection"] = {"mmaction2": mmaction.__version__, "numpy": np.__version__}
    else:
        import sklearn

        data.update(microg_fixtures())
        data["versions_microg"] = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
