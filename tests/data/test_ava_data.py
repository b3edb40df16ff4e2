"""AVA-format detection data: annotations, proposals, keyframe clips, box-aware transforms, the dataset on real
videos of SynthActions-Det."""

import pickle

import numpy as np
import pytest
import torch

from vidlab.data import transforms as T
from vidlab.data.ava import (
    AVADataset,
    box_iou,
    clip_indices,
    collate_detection,
    load_proposals,
    read_ava_annotations,
    read_excluded,
    rois_of,
)
from vidlab.data.datasets import AnnotationError


def test_annotations_group_actions_per_person_and_drop_unlisted_ids(tmp_path):
    p = tmp_path / "gt.csv"
    p.write_text(
        "vidA,0902,0.1,0.2,0.5,0.9,12,0\n"
        "vidA,0902,0.1,0.2,0.5,0.9,17,0\n"  # the same person, a second action
        "vidA,0902,0.6,0.1,0.9,0.8,80,1\n"
        "vidA,0903,0.6,0.1,0.9,0.8,99,1\n"  # id 99 not in the label map: the whole keyframe goes
        "vidB,0902,0.0,0.0,1.0,1.0,17,3\n"
    )
    gt = read_ava_annotations(p, class_ids=[12, 17, 80])
    assert sorted(gt) == [("vidA", 902), ("vidB", 902)]
    kf = gt[("vidA", 902)]
    np.testing.assert_allclose(kf.boxes, [[0.1, 0.2, 0.5, 0.9], [0.6, 0.1, 0.9, 0.8]])
    assert kf.labels == [[0, 1], [2]]


@pytest.mark.parametrize(
    "line, message",
    [
        ("vidA,902,0.1,0.2,0.5", "expected video_id"),
        ("vidA,9x2,0.1,0.2,0.5,0.9,12,0", "timestamp '9x2'"),
        ("vidA,902,0.5,0.2,0.1,0.9,12,0", "not a normalized"),
        ("vidA,902,0.1,0.2,0.5,0.9,walk,0", "action id 'walk'"),
    ],
)
def test_bad_annotation_rows_name_file_and_line(tmp_path, line, message):
    p = tmp_path / "gt.csv"
    p.write_text("vidA,902,0.1,0.2,0.5,0.9,12,0\n" + line + "\n")
    with pytest.raises(AnnotationError, match=rf"gt.csv:2: .*{message}"):
        read_ava_annotations(p, [12])


def test_excluded_timestamps(tmp_path):
    p = tmp_path / "ex.csv"
    p.write_text("vidA,0902\nvidB,1000\n")
    assert read_excluded(p) == {("vidA", 902), ("vidB", 1000)}
    assert read_excluded(None) == set() and read_excluded(tmp_path / "missing.csv") == set()


def test_mmaction2_proposals_threshold_keeps_the_best_box_and_caps(tmp_path):
    p = tmp_path / "props.pkl"
    props = {
        "vidA,0902": np.asarray([[0.1, 0.1, 0.5, 0.5, 0.95], [0.2, 0.2, 0.6, 0.6, 0.5], [0, 0, 1, 1, 0.99]]),
        "vidA,0903": np.asarray([[0.1, 0.1, 0.5, 0.5, 0.4], [0.2, 0.2, 0.6, 0.6, 0.7]]),  # none >= 0.9: keep 0.7
        "vidB,0902": np.asarray([[0.1, 0.1, 0.5, 0.5]]),  # no score column
    }
    p.write_bytes(pickle.dumps(props))
    out = load_proposals(p, score_thr=0.9, max_proposals=1)
    np.testing.assert_allclose(out[("vidA", 902)], [[0.1, 0.1, 0.5, 0.5, 0.95]])  # first of those kept, capped
    np.testing.assert_allclose(out[("vidA", 903)], [[0.2, 0.2, 0.6, 0.6, 0.7]])
    np.testing.assert_allclose(out[("vidB", 902)], [[0.1, 0.1, 0.5, 0.5, 1.0]])


def test_proposals_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "props.pkl"
    p.write_bytes(pickle.dumps({"vidA,0902": Evil()}))
    with pytest.raises(AnnotationError, match="builtins.print"):
        load_proposals(p)


def test_pyslowfast_box_csv(tmp_path):
    p = tmp_path / "boxes.csv"
    p.write_text("vidA,0902,0.1,0.1,0.5,0.5,,0.95\nvidA,0902,0.1,0.1,0.5,0.5,,0.95\nvidA,0902,0.2,0.2,0.6,0.6,,0.85\n")
    out = load_proposals(p, score_thr=0.9)
    np.testing.assert_allclose(out[("vidA", 902)], [[0.1, 0.1, 0.5, 0.5, 0.95]])  # repeated rows are one box


def test_clip_conventions():
    # even clip_len: both conventions put the keyframe at position clip_len // 2
    for conv in ("mmaction2", "pyslowfast"):
        np.testing.assert_array_equal(clip_indices(100, 4, 8, 1000, conv), [84, 92, 100, 108])
    # odd clip_len: MMAction2 centres the keyframe, PySlowFast starts half a step earlier
    np.testing.assert_array_equal(clip_indices(100, 3, 8, 1000, "mmaction2"), [92, 100, 108])
    np.testing.assert_array_equal(clip_indices(100, 3, 8, 1000, "pyslowfast"), [88, 96, 104])
    np.testing.assert_array_equal(clip_indices(2, 4, 8, 20, "mmaction2"), [0, 0, 2, 10])  # clamped at both ends
    np.testing.assert_array_equal(clip_indices(18, 4, 8, 20, "mmaction2"), [2, 10, 18, 19])
    rng = np.random.default_rng(0)
    offsets = np.stack([clip_indices(100, 4, 8, 1000, "mmaction2", rng) for _ in range(200)]) - [84, 92, 100, 108]
    assert offsets.min() == -4 and offsets.max() == 3  # randint(-interval // 2, (interval + 1) // 2)
    odd = np.stack([clip_indices(100, 4, 3, 1000, "mmaction2", rng) for _ in range(200)]) - [94, 97, 100, 103]
    assert odd.min() == -2 and odd.max() == 1  # (-3) // 2 = -2, as numpy's randint(-3 // 2, 2) in MMAction2
    assert np.array_equal(clip_indices(100, 4, 8, 1000, "pyslowfast", rng), [84, 92, 100, 108])  # never jittered


def test_box_transforms_follow_the_frames():
    imgs = torch.zeros(2, 40, 60, 3, dtype=torch.uint8)
    boxes = np.float32([[10, 5, 30, 25], [50, 30, 60, 40], [0, 0, 4, 4]])
    labels = np.eye(3, dtype=np.float32)
    res = T.Resize((-1, 20))({"imgs": imgs, "gt_bboxes": boxes, "gt_labels": labels})  # x0.5
    np.testing.assert_allclose(res["gt_bboxes"], boxes / 2)
    res = T.Flip(flip_ratio=1.0)({"imgs": imgs, "gt_bboxes": boxes})
    np.testing.assert_allclose(res["gt_bboxes"], [[30, 5, 50, 25], [0, 30, 10, 40], [56, 0, 60, 4]])
    res = T.CenterCrop(20)({"imgs": imgs, "gt_bboxes": boxes, "gt_labels": labels})  # crop x 20..40, y 10..30
    np.testing.assert_allclose(res["gt_bboxes"], [[0, 0, 10, 15]])  # clipped; the other two fell outside: dropped
    np.testing.assert_array_equal(res["gt_labels"], labels[:1])
    with pytest.raises(ValueError, match="multi-crop"):
        T.ThreeCrop(20)({"imgs": imgs, "gt_bboxes": boxes})
    rng = np.random.default_rng(0)
    sizes = {T.RandomRescale((20, 24))({"imgs": imgs, "rng": rng})["imgs"].shape[1] for _ in range(40)}
    assert sizes == {20, 21, 22, 23, 24}


def test_iou_and_rois():
    assert box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]).tolist() == [[1 / 7, 1.0, 0.0]]
    rois = rois_of([torch.tensor([[1.0, 2, 3, 4]]), torch.zeros(0, 4), torch.tensor([[5.0, 6, 7, 8], [0, 0, 1, 1]])])
    assert rois.tolist() == [[0, 1, 2, 3, 4], [2, 5, 6, 7, 8], [2, 0, 0, 1, 1]]


@pytest.fixture(scope="module")
def synth_det(tmp_path_factory):
    from vidlab.data.synthetic_det import generate_synth_det

    root = tmp_path_factory.mktemp("synth_det")
    info = generate_synth_det(root, num_videos=3, workers=1, rawframes=True, progress=False)
    return root, info


def test_synth_det_layout_and_reuse(synth_det):
    from vidlab.data.synthetic_det import DET_CLASSES, generate_synth_det

    root, info = synth_det
    assert info["classes"] == list(DET_CLASSES) and info["generated"]
    ann = root / "annotations"
    gt = read_ava_annotations(ann / "train.csv", list(range(1, 10)))
    assert len(gt) == info["splits"]["train"]["keyframes"] > 0
    assert all(len(kf.boxes) in (2, 3) and all(kf.labels) for kf in gt.values())
    props = load_proposals(ann / "train_proposals.pkl")
    assert set(props) == set(gt)
    for key, kf in gt.items():  # every actor has a proposal overlapping it
        assert (box_iou(kf.boxes, props[key][:, :4]).max(axis=1) > 0.5).all()
    again = generate_synth_det(root, num_videos=3, workers=1, rawframes=True, progress=False)
    assert not again["generated"]


@pytest.mark.parametrize("frames", [False, True])
def test_dataset_reads_keyframe_clips_with_pixel_boxes(synth_det, frames):
    root, _ = synth_det
    ann = root / "annotations"
    gt = read_ava_annotations(ann / "val.csv", list(range(1, 10)))
    props = load_proposals(ann / "val_proposals.csv")
    keyframes = [gt[k] for k in sorted(gt)]
    ds = AVADataset(
        keyframes,
        9,
        T.Compose([T.Resize((-1, 60))]),
        lambda v: str(root / ("frames" if frames else "videos") / (v if frames else f"{v}.mp4")),
        clip_len=4,
        frame_interval=3,
        proposals=props,
        frames=frames,
        frame_tmpl="img_{index:05d}.jpg",
        fps=12,
    )
    item = ds[0]
    kf = keyframes[0]
    assert item["imgs"].shape == (1, 4, 60, 80, 3) and item["imgs"].dtype == torch.uint8
    assert item["meta"]["frame_inds"] == [kf.stamp * 12 + d for d in (-6, -3, 0, 3)]
    np.testing.assert_allclose(item["boxes"].numpy(), props[(kf.video, kf.stamp)][:, :4] * [80, 60, 80, 60], atol=1e-4)
    assert item["labels"].shape == (len(item["boxes"]), 9)
    batch = collate_detection([ds[0], {**ds[1], "imgs": ds[1]["imgs"][:, :, :50]}])
    assert batch["imgs"].shape == (2, 1, 4, 60, 80, 3) and len(batch["boxes"]) == 2
    assert batch["imgs"][1, :, :, 50:].sum() == 0  # padded at the bottom


def test_training_boxes_add_labelled_and_negative_proposals(synth_det):
    root, _ = synth_det
    ann = root / "annotations"
    gt = read_ava_annotations(ann / "train.csv", list(range(1, 10)))
    props = load_proposals(ann / "train_proposals.csv", score_thr=0.0)
    key = sorted(gt)[0]
    ds = AVADataset([gt[key]], 9, T.Compose([]), str, train=True, proposals=props, train_proposals=True)
    boxes, labels = ds._boxes(gt[key])
    iou = box_iou(boxes, gt[key].boxes).max(axis=1)
    assert len(boxes) > len(gt[key].boxes)
    assert ((labels.sum(axis=1) > 0) == (iou >= 0.5)).all()  # positives labelled, the rest negatives
    assert (iou[labels.sum(axis=1) == 0] < 0.3).all()


def test_flip_swaps_direction_classes_of_boxes_and_refuses_vertical_flips():
    imgs = torch.zeros(1, 10, 20, 3, dtype=torch.uint8)
    labels = np.float32([[1, 0, 0], [0, 1, 1]])
    res = T.Flip(1.0, flip_label_map={0: 1, 1: 0})({"imgs": imgs, "gt_bboxes": np.float32([[0, 0, 5, 5]] * 2),
                                                     "gt_labels": labels})  # fmt: skip
    np.testing.assert_array_equal(res["gt_labels"], [[0, 1, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match="vertical"):  # refused before the draw, even when it would not flip
        T.Flip(0.0, direction="vertical")({"imgs": imgs, "gt_bboxes": np.float32([[0, 0, 5, 5]])})


def test_protocol_2_proposals_pickle_loads(tmp_path):
    p = tmp_path / "props.pkl"
    p.write_bytes(pickle.dumps({"vidA,0902": np.float32([[0.1, 0.1, 0.5, 0.5, 0.95]])}, protocol=2))
    np.testing.assert_allclose(load_proposals(p)[("vidA", 902)], [[0.1, 0.1, 0.5, 0.5, 0.95]])


def test_test_pipelines_may_not_crop(synth_det):
    root, _ = synth_det
    ann = root / "annotations"
    gt = read_ava_annotations(ann / "val.csv", list(range(1, 10)))
    ds = AVADataset([gt[min(gt)]], 9, T.Compose([T.CenterCrop(40)]), lambda v: str(root / "videos" / f"{v}.mp4"),
                    clip_len=2, test_boxes="gt")  # fmt: skip
    with pytest.raises(ValueError, match="must not crop or flip"):
        ds[0]
