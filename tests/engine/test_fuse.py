"""`vidlab fuse`: weighted late fusion of `vidlab test --out` score files, videos matched by id."""

import numpy as np
import pytest

from vidlab.cli import main
from vidlab.engine.evaluate import read_results, write_results
from vidlab.engine.fuse import FusionError, fuse_results
from vidlab.tasks.recognition import compute_metrics


def _files(tmp_path, n=40, classes=6, shuffle=True, multi_label=False):
    rng = np.random.default_rng(0)
    videos = [f"videos/v{i:03d}.mp4" for i in range(n)]
    labels = (rng.random((n, classes)) < 0.3).astype(int) if multi_label else rng.integers(0, classes, n)
    paths, tables = [], []
    for k in range(3):
        scores = rng.normal(size=(n, classes)).astype(np.float32)
        order = rng.permutation(n) if shuffle and k else np.arange(n)  # rows in another order than the first file
        path = tmp_path / f"scores{k}.json"
        write_results(path, scores[order], labels[order], [videos[i] for i in order], {}, {"split": "test"})
        paths.append(path)
        tables.append(read_results(path)["scores"].astype(np.float64)[np.argsort(order)])  # video order, as written
    return paths, tables, videos, labels


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_weighted_sum_matched_by_video_id(tmp_path):
    paths, tables, videos, labels = _files(tmp_path)
    fused = fuse_results(paths, [1.0, 0.5, 2.0])
    want = 1.0 * tables[0] + 0.5 * tables[1] + 2.0 * tables[2]
    assert fused["videos"] == videos
    np.testing.assert_allclose(fused["scores"], want, rtol=1e-12)
    assert fused["metrics"] == compute_metrics(want, labels)
    soft = fuse_results(paths, apply_softmax=True)
    np.testing.assert_allclose(soft["scores"], sum(_softmax(t.astype(np.float64)) for t in tables), rtol=1e-12)
    # MMAction2's get_weighted_score: np.dot over the stacked (files, videos, classes) scores
    mm = np.dot(np.stack(tables).astype(np.float64).T, np.array([1.0, 0.5, 2.0])).T
    np.testing.assert_allclose(fused["scores"], mm, rtol=1e-12)


def test_multi_label_reports_both_maps(tmp_path):
    paths, tables, _, labels = _files(tmp_path, multi_label=True)
    fused = fuse_results(paths[:2])
    assert set(fused["metrics"]) == {"mAP", "mmit_mAP"}
    assert 0.0 < fused["metrics"]["mAP"] <= 1.0


def test_mismatched_files_name_the_videos(tmp_path):
    paths, _, videos, labels = _files(tmp_path, shuffle=False)
    short = tmp_path / "short.json"
    doc = read_results(paths[1])
    write_results(short, doc["scores"][:-2], doc["labels"][:-2], doc["videos"][:-2], {}, {})
    with pytest.raises(FusionError, match="2 of .* videos are not in it .*v038.mp4, videos/v039.mp4"):
        fuse_results([paths[0], short])
    relabelled = tmp_path / "relabelled.json"
    other = doc["labels"].copy()
    other[3] = (other[3] + 1) % 6
    write_results(relabelled, doc["scores"], other, doc["videos"], {}, {})
    with pytest.raises(FusionError, match="labels differ .*v003.mp4"):
        fuse_results([paths[0], relabelled])
    with pytest.raises(FusionError, match="2 score files but 3 weights"):
        fuse_results(paths[:2], [1, 1, 1])
    with pytest.raises(FusionError, match="at least two"):
        fuse_results(paths[:1])


def test_cli(tmp_path, capsys):
    paths, tables, _, labels = _files(tmp_path)
    out = tmp_path / "fused.json"
    main(["fuse", "--scores", *map(str, paths[:2]), "--weights", "1", "3", "--out", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    want = compute_metrics(tables[0] + 3 * tables[1], labels)
    assert (
        printed[-1]
        == f"RESULT top1={want['top1']:.4f} top5={want['top5']:.4f} mean_class_acc={want['mean_class_acc']:.4f}"
    )
    assert read_results(out)["metrics"] == want  # the fused file can be fused again or inspected
    with pytest.raises(SystemExit) as e:
        main(["fuse", "--scores", str(paths[0]), str(tmp_path / "missing.json")])
    assert e.value.code == 2
    assert "missing.json: not a `vidlab test --out` score file" in capsys.readouterr().err
