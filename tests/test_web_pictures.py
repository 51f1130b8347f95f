"""Tests of the lab's pictures (`web.pictures`): the colour map, preview sizes, what each mode shows."""

from __future__ import annotations

import numpy as np

from overfit.images import to_uint8
from overfit.modes import get_mode
from overfit.web.pictures import colour_lut, colour_mapped, preview_size, show, show_frame, show_target


def test_previews_keep_the_pictures_shape_and_are_never_larger():
    assert preview_size(300, 1000) == (77, 258)  # 20000 pixels: a quarter of each side
    assert preview_size(32, 64) == (32, 64)
    assert preview_size(300, 1000, 2000) == (24, 82)
    assert preview_size(1, 100000, 10) == (1, 10)


def test_binary_pictures_go_through_the_colour_map_and_others_do_not():
    binary, gray, rgb = get_mode("binary"), get_mode("gray"), get_mode("rgb")
    assert colour_mapped(binary) and not colour_mapped(gray) and not colour_mapped(rgb)
    lut = colour_lut()
    assert lut.shape == (256, 3) and tuple(lut[0]) == (68, 1, 84) and tuple(lut[255]) == (253, 231, 37)  # viridis ends
    values = np.array([[0.0, 1.0], [0.5, np.nan]], np.float32)
    assert show(values, binary).tolist() == [[lut[0].tolist(), lut[255].tolist()], [lut[128].tolist(), lut[128].tolist()]]
    assert show(values, gray).tolist() == [[0, 255], [128, 128]]
    gray_picture = np.array([[200, 100], [129, 128]], np.uint8)  # the original threshold: background above 128
    assert show_target(gray_picture, binary).tolist() == [[lut[255].tolist(), lut[0].tolist()], [lut[255].tolist(), lut[0].tolist()]]
    assert show_target(gray_picture, gray).tolist() == gray_picture.tolist()
    assert show_target(gray_picture, rgb).tolist() == np.repeat(gray_picture[:, :, None], 3, axis=2).tolist()
    frame = np.array([[0, 255]], np.uint8)
    assert show_frame(frame, binary).tolist() == [[lut[0].tolist(), lut[255].tolist()]] and show_frame(frame, gray) is frame


def test_pictures_round_as_every_other_picture_does():
    values = np.linspace(0, 1, 1001, dtype=np.float32).reshape(7, 143)
    assert np.array_equal(show(values, get_mode("gray")), to_uint8(values))
