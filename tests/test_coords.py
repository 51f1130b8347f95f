"""Tests for overfit.coords: the coordinate convention, checked pixel by pixel on a small picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from overfit.coords import input_affine, label_at, pixel_grid, pixel_index

H, W = 3, 4
# Distinct values, so every pixel is identifiable: PICTURE[row, col] = 10 * row + col.
PICTURE = torch.tensor([[10 * r + c for c in range(W)] for r in range(H)])


def _yx(*pairs: tuple[float, float]) -> torch.Tensor:
    return torch.tensor(pairs, dtype=torch.float32)


# -- label_at / pixel_index --------------------------------------------------------


def test_origin_is_the_bottom_left_pixel():
    assert label_at(PICTURE, _yx((0, 0))).tolist() == [PICTURE[H - 1, 0].item()] == [20]


def test_far_corner_is_the_top_right_pixel():
    assert label_at(PICTURE, _yx((H - 1, W - 1))).tolist() == [PICTURE[0, W - 1].item()] == [3]


def test_all_four_corners():
    corners = _yx((0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1))
    # bottom-left, bottom-right, top-left, top-right
    assert label_at(PICTURE, corners).tolist() == [20, 23, 0, 3]


def test_coordinates_round_to_the_nearest_pixel_centre():
    # (0.49, 0.51) -> (0, 1): bottom row, second column.
    assert label_at(PICTURE, _yx((0.49, 0.51))).tolist() == [PICTURE[H - 1, 1].item()] == [21]
    # (1.6, 2.4) -> (2, 2): top row, third column.
    assert label_at(PICTURE, _yx((1.6, 2.4))).tolist() == [PICTURE[0, 2].item()] == [2]


def test_ties_round_half_to_even_like_numpy():
    yx = _yx((0.5, 0.5), (1.5, 1.5), (0.5, 2.5))
    rows, cols = pixel_index(yx, H)
    ref = np.round(yx.numpy())  # numpy rounds half to even
    assert rows.tolist() == (H - 1 - ref[:, 0]).astype(int).tolist() == [2, 0, 2]
    assert cols.tolist() == ref[:, 1].astype(int).tolist() == [0, 2, 2]


def test_pixel_index_returns_long_row_and_column():
    rows, cols = pixel_index(_yx((0, 0), (2, 3), (1.2, 1.7)), H)
    assert rows.dtype == torch.long and cols.dtype == torch.long
    assert rows.tolist() == [2, 0, 1]
    assert cols.tolist() == [0, 3, 2]


# -- pixel_grid ----------------------------------------------------------------------


def test_pixel_grid_shape_dtype_and_order():
    grid = pixel_grid(H, W)
    assert grid.shape == (H * W, 2)
    assert grid.dtype == torch.float32
    assert grid[0].tolist() == [H - 1, 0]  # top-left pixel first
    assert grid[1].tolist() == [H - 1, 1]  # then along the top row
    assert grid[W].tolist() == [H - 2, 0]  # then the next row down
    assert grid[-1].tolist() == [0, W - 1]  # bottom-right last


def test_pixel_grid_matches_a_naive_loop():
    expected = [[H - 1 - r, c] for r in range(H) for c in range(W)]
    assert pixel_grid(H, W).tolist() == expected


def test_label_at_the_grid_reshapes_to_the_picture():
    assert torch.equal(label_at(PICTURE, pixel_grid(H, W)).reshape(H, W), PICTURE)


def test_round_trip_on_a_random_non_square_picture():
    gen = torch.Generator().manual_seed(0)
    picture = torch.randint(0, 256, (7, 5), generator=gen)
    assert torch.equal(label_at(picture, pixel_grid(7, 5)).reshape(7, 5), picture)


# -- input_affine ----------------------------------------------------------------------


def _apply(scale: torch.Tensor, offset: torch.Tensor, yx: torch.Tensor) -> torch.Tensor:
    return yx * scale + offset


def test_input_affine_r1_maps_the_original_picture_to_about_minus_one_one():
    scale, offset = input_affine(300, 1000, 1.0)
    assert scale.shape == (2,) and offset.shape == (2,)
    out = _apply(scale, offset, _yx((0, 0), (150, 500), (299, 999)))
    expected = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [299 / 150 - 1, 999 / 500 - 1]])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_input_affine_r3_triples_r1():
    yx = _yx((0, 0), (150, 500), (299, 999), (17.3, 640.2))
    out1 = _apply(*input_affine(300, 1000, 1.0), yx)
    out3 = _apply(*input_affine(300, 1000, 3.0), yx)
    torch.testing.assert_close(out3, 3 * out1, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out3[2], torch.tensor([3 * (299 / 150 - 1), 3 * (999 / 500 - 1)]), rtol=0, atol=1e-5)


def test_input_affine_uses_floor_half_of_odd_sizes():
    # H = 5, W = 7: the halves are 5 // 2 = 2 and 7 // 2 = 3.
    out = _apply(*input_affine(5, 7, 1.0), _yx((2, 3), (4, 6)))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [1.0, 1.0]]), rtol=0, atol=1e-6)


def test_input_affine_none_is_the_identity():
    scale, offset = input_affine(300, 1000, None)
    assert scale.tolist() == [1.0, 1.0]
    assert offset.tolist() == [0.0, 0.0]
    yx = _yx((0, 0), (299, 999), (12.5, 3.25))
    assert torch.equal(_apply(scale, offset, yx), yx)


@pytest.mark.parametrize("r", [0.5, 1.0, 3.0])
def test_input_affine_matches_its_formula(r):
    yx = _yx((0, 0), (40, 11), (63, 127))
    out = _apply(*input_affine(64, 128, r), yx)
    expected = torch.stack([r * (yx[:, 0] / 32 - 1), r * (yx[:, 1] / 64 - 1)], dim=1)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_pixel_grid_chunks_are_slices_of_the_whole_grid():
    whole = pixel_grid(5, 7)
    parts = [pixel_grid(5, 7, "cpu", s, s + 4) for s in range(0, 35, 4)]
    assert [p.shape[0] for p in parts] == [4] * 8 + [3]
    assert torch.equal(torch.cat(parts), whole)
    assert pixel_grid(5, 7, "cpu", 33).tolist() == [[0.0, 5.0], [0.0, 6.0]]  # the bottom row's last two pixels


# -- bilinear sampling ---------------------------------------------------------------------------

from overfit.coords import bilinear_at  # noqa: E402


def test_bilinear_at_pixel_centres_gives_the_pixels():
    picture = torch.arange(12, dtype=torch.float32).reshape(3, 4, 1)  # row 0 on top
    yx = pixel_grid(3, 4)
    torch.testing.assert_close(bilinear_at(picture, yx), picture.reshape(-1, 1))


def test_bilinear_at_between_centres_mixes_neighbours():
    picture = torch.tensor([[0.0, 1.0], [2.0, 4.0]])[:, :, None]  # top row 0, 1; bottom row 2, 4
    # y = 0 is the bottom row (2, 4); y = 1 the top row (0, 1).
    cases = {(0.0, 0.5): 3.0, (1.0, 0.5): 0.5, (0.5, 0.0): 1.0, (0.5, 1.0): 2.5, (0.5, 0.5): 1.75, (0.25, 0.0): 1.5}
    for (y, x), expected in cases.items():
        assert float(bilinear_at(picture, torch.tensor([[y, x]]))) == pytest.approx(expected)
    # Outside the centres' hull: clamped to the nearest edge.
    assert float(bilinear_at(picture, torch.tensor([[-3.0, 9.0]]))) == pytest.approx(4.0)
