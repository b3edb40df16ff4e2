"""RoIAlign against a plain-loop reference of the Detectron2 / mmcv kernel rules, a hand-computed ramp, gradcheck."""

import pytest
import torch

from tests.assets.roi_align_reference import roi_align_loop
from vidlab.models.layers import RoIAlign, roi_align

# feature maps are 6 x 7 (H x W); with spatial_scale 0.5 the image is 12 x 14 pixels
BOXES = [
    [0, 2.0, 3.0, 9.0, 10.0],  # interior
    [2, -4.0, -3.0, 5.0, 4.0],  # over the top-left corner
    [1, 8.0, 6.0, 17.0, 15.0],  # over the bottom-right corner, past the [-1, W] sample limit
    [0, 20.0, 2.0, 30.0, 8.0],  # wholly right of the map
    [2, -12.0, -10.0, -4.0, -3.0],  # wholly above-left, beyond -1
    [1, 3.1, 4.2, 3.7, 4.5],  # tiny (under one cell)
    [0, 5.0, 2.0, 5.0, 9.0],  # degenerate: x1 == x2
    [1, 4.0, 7.0, 10.0, 7.0],  # degenerate: y1 == y2
    [2, 0.0, 0.0, 14.0, 12.0],  # the whole image
    [0, 13.0, 11.0, 14.0, 12.0],  # the last cell: samples on the upper edge rows/columns
    [1, 1.3, 0.7, 11.9, 5.1],  # adaptive grid 3 x 2 with 3x3 bins
]


def _inputs(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(3, 4, 6, 7, generator=gen, dtype=dtype)
    return features, torch.tensor(BOXES, dtype=dtype)


@pytest.mark.parametrize("output_size", [(3, 3), (2, 4)])
@pytest.mark.parametrize("sampling_ratio", [1, 2, 0, -1])
@pytest.mark.parametrize("aligned", [True, False])
def test_matches_loop_reference(aligned, sampling_ratio, output_size):
    features, rois = _inputs()
    out = roi_align(features, rois, output_size, 0.5, sampling_ratio, aligned)
    expected = roi_align_loop(features, rois, output_size, 0.5, sampling_ratio, aligned)
    assert out.shape == (len(BOXES), 4, *output_size) and out.dtype == torch.float64
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert out.abs().sum() > 0 and (out[3] == 0).all() and (out[4] == 0).all()  # outside boxes give exact zeros


@pytest.mark.parametrize("aligned", [True, False])
def test_float32_and_int_output_size(aligned):
    features, rois = _inputs(torch.float32, seed=1)
    out = roi_align(features, rois, 2, 0.5, 0, aligned)
    assert out.dtype == torch.float32 and out.shape == (len(BOXES), 4, 2, 2)
    torch.testing.assert_close(out.double(), roi_align_loop(features, rois, (2, 2), 0.5, 0, aligned), atol=1e-5, rtol=0)


def test_box_order_does_not_matter():
    features, rois = _inputs()
    perm = torch.randperm(len(BOXES), generator=torch.Generator().manual_seed(3))
    out = roi_align(features, rois, (3, 2), 0.5, 0, True)
    torch.testing.assert_close(roi_align(features, rois[perm], (3, 2), 0.5, 0, True), out[perm], atol=1e-12, rtol=0)
    sorted_rois = rois[rois[:, 0].argsort(stable=True)]  # boxes grouped by image
    torch.testing.assert_close(
        roi_align(features, sorted_rois, (3, 2), 0.5, 0, True),
        roi_align_loop(features, sorted_rois, (3, 2), 0.5, 0, True),
        atol=1e-5,
        rtol=0,
    )


def test_aligned_zero_size_box_with_adaptive_grid_is_zero():
    """ceil(0 / ph) = 0 sample points: the kernels return 0 / max(0, 1) = 0; a fixed grid samples the line."""
    features, _ = _inputs()
    rois = torch.tensor([[1, 5.0, 2.0, 5.0, 9.0]], dtype=torch.float64)
    assert (roi_align(features, rois, 2, 0.5, 0, True) == 0).all()
    fixed = roi_align(features, rois, 2, 0.5, 2, True)
    assert fixed.abs().sum() > 0
    torch.testing.assert_close(fixed, roi_align_loop(features, rois, (2, 2), 0.5, 2, True), atol=1e-5, rtol=0)


def test_empty_rois_forward_and_backward():
    features = torch.randn(2, 3, 5, 5, requires_grad=True)
    out = roi_align(features, torch.zeros(0, 5), (2, 3), 0.25, 0, True)
    assert out.shape == (0, 3, 2, 3)
    out.sum().backward()
    assert features.grad is not None and features.grad.shape == features.shape and (features.grad == 0).all()


def test_ramp_is_reproduced_exactly_at_bin_centres():
    """f(y, x) = x + 10 y is linear, so each bin average is f at the bin centre."""
    ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    ramp = (xs + 10 * ys).view(1, 1, 8, 8)
    rois = torch.tensor([[0, 1.0, 2.0, 5.0, 6.0]])  # 4 x 4 pixels, bins of 2 x 2
    # aligned: the box starts at (x, y) = (0.5, 1.5) in cell-index coordinates, bin centres 1 further
    aligned = torch.tensor([[[1.5 + 25.0, 3.5 + 25.0], [1.5 + 45.0, 3.5 + 45.0]]])
    for ratio in (0, 1, 2, 3):
        torch.testing.assert_close(roi_align(ramp, rois, 2, 1.0, ratio, True)[0], aligned, atol=1e-5, rtol=0)
    # legacy: no half-pixel shift, the same centres sit 0.5 further right and down (+0.5 + 5)
    legacy = torch.tensor([[[2.0 + 30.0, 4.0 + 30.0], [2.0 + 50.0, 4.0 + 50.0]]])
    torch.testing.assert_close(roi_align(ramp, rois, 2, 1.0, 0, False)[0], legacy, atol=1e-5, rtol=0)
    # spatial scale: the same box given in a 2x larger image
    torch.testing.assert_close(roi_align(ramp, rois * torch.tensor([1, 2, 2, 2, 2]), 2, 0.5, 0, True)[0], aligned)


@pytest.mark.parametrize("aligned", [True, False])
def test_gradcheck(aligned):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor(
        [[1, 0.5, 1.0, 9.0, 8.5], [0, -2.0, 3.0, 4.0, 12.0], [1, 6.0, 6.0, 6.5, 6.2]], dtype=torch.float64
    )
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, (2, 3), 0.5, 0, aligned), (features,))


def test_gradient_matches_loop_reference():
    """The gradient of a weighted sum of the outputs is the reference's weight of each feature cell."""
    features, rois = _inputs()
    features = features[:, :1].clone().requires_grad_(True)  # one channel keeps the cell-by-cell probe short
    gen = torch.Generator().manual_seed(5)
    probe = torch.randn(len(BOXES), 1, 2, 3, generator=gen, dtype=torch.float64)
    (roi_align(features, rois, (2, 3), 0.5, 0, True) * probe).sum().backward()
    expected = torch.zeros_like(features)
    for index in range(features.numel()):  # the reference is linear in the features: probe it cell by cell
        basis = torch.zeros(features.numel(), dtype=torch.float64)
        basis[index] = 1
        expected.view(-1)[index] = (roi_align_loop(basis.view_as(features), rois, (2, 3), 0.5, 0, True) * probe).sum()
    torch.testing.assert_close(features.grad, expected, atol=1e-5, rtol=0)


def test_bfloat16():
    features, rois = _inputs(torch.float32, seed=2)
    out = roi_align(features.bfloat16(), rois, (3, 3), 0.5, 0, True)
    assert out.dtype == torch.bfloat16
    expected = roi_align_loop(features.bfloat16(), rois, (3, 3), 0.5, 0, True)
    torch.testing.assert_close(out.double(), expected, atol=0.05, rtol=0.02)


def test_module_and_errors():
    layer = RoIAlign(7, spatial_scale=1 / 16, sampling_ratio=0, aligned=True)
    assert layer.output_size == (7, 7)
    assert repr(layer) == "RoIAlign(output_size=(7, 7), spatial_scale=0.0625, sampling_ratio=0, aligned=True)"
    features, rois = _inputs()
    torch.testing.assert_close(
        RoIAlign((2, 4), 0.5, 2, False)(features, rois), roi_align(features, rois, (2, 4), 0.5, 2, False)
    )
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(features, torch.tensor([[3, 0.0, 0.0, 1.0, 1.0]], dtype=torch.float64), 2, 0.5, 0, True)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        roi_align(features, torch.zeros(2, 4), 2, 0.5, 0, True)
    with pytest.raises(ValueError, match="output_size"):
        roi_align(features, rois, (2, 0), 0.5, 0, True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(4, 64, 16, 16, generator=gen, dtype=dtype)
    xy = torch.rand(40, 2, generator=gen) * 280 - 20
    wh = torch.rand(40, 2, generator=gen) * 200
    rois = torch.cat([torch.randint(0, 4, (40, 1), generator=gen).float(), xy, xy + wh], dim=1).to(dtype)
    for aligned, ratio in ((True, 0), (False, 0), (True, 2)):
        cpu = roi_align(features, rois, 7, 1 / 16, ratio, aligned)
        features_cuda = features.cuda().requires_grad_(True)
        cuda = roi_align(features_cuda, rois.cuda(), 7, 1 / 16, ratio, aligned)
        torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-5)
        cuda.sum().backward()
        assert features_cuda.grad.abs().sum() > 0
