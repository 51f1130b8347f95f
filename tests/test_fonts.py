"""Tests for overfit.fonts: DejaVu Sans from matplotlib's font folder, regular and bold."""

from __future__ import annotations

import os

import matplotlib

from overfit import fonts


def test_font_paths_are_matplotlibs_dejavu():
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    assert fonts.font_path() == os.path.join(folder, "DejaVuSans.ttf")
    assert fonts.font_path(bold=True) == os.path.join(folder, "DejaVuSans-Bold.ttf")
    assert os.path.isfile(fonts.font_path()) and os.path.isfile(fonts.font_path(bold=True))


def test_font_size_face_and_cache():
    regular, bold = fonts.font(20), fonts.font(20, bold=True)
    assert regular.size == 20 and bold.size == 20
    assert regular.getname() == ("DejaVu Sans", "Book")
    assert bold.getname() == ("DejaVu Sans", "Bold")
    assert fonts.font(20) is regular  # one object per (size, face): frames reuse it
    # Bold glyphs are wider; a larger size is wider in proportion.
    assert bold.getlength("accuracy 95.3 %") > regular.getlength("accuracy 95.3 %")
    assert abs(fonts.font(40).getlength("step 12,000") - 2 * regular.getlength("step 12,000")) <= 2
