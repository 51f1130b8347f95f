"""Tests for overfit.video: frame conversion, captions, MP4/GIF writing and the PNG plots.

Everything is read back (imageio's FFMPEG reader, Pillow) and checked by value: frame
counts, sizes, pixel intensities, and that no temporary file is left in the folder.
"""

from __future__ import annotations

import os

import imageio.v2 as iio
import matplotlib.figure
import numpy as np
import pytest
from PIL import Image

from overfit import video

CAPTION = "step 12,000   accuracy 95.3 %"


def read_mp4(path) -> list[np.ndarray]:
    # A comprehension, not list(reader): the reader's len() is inf and list() chokes on it.
    reader = iio.get_reader(path, format="FFMPEG")
    try:
        return [frame for frame in reader]
    finally:
        reader.close()


# ----------------------------------------------------------------------------- prob_to_gray


def test_prob_to_gray_values_and_dtype():
    prob = np.array([[0.0, 1.0, 0.5, np.nan], [-1.0, 2.0, np.inf, 0.25]])
    gray = video.prob_to_gray(prob)
    assert gray.dtype == np.uint8
    assert gray.shape == (2, 4)
    # 0.5 * 255 = 127.5 rounds half up; NaN is undecided (0.5); 0.25 * 255 = 63.75 -> 64.
    np.testing.assert_array_equal(gray, [[0, 255, 128, 128], [0, 255, 255, 64]])


def test_prob_to_gray_matches_round_on_random_values():
    prob = np.random.default_rng(0).random((7, 9)).astype(np.float32)
    np.testing.assert_array_equal(video.prob_to_gray(prob), np.round(prob.astype(np.float64) * 255))


# ----------------------------------------------------------------------------- annotate


def test_annotate_shape_keeps_frame_and_draws_text():
    gray = np.random.default_rng(1).integers(0, 256, size=(30, 200), dtype=np.uint8)
    out = video.annotate(gray, CAPTION)
    band = video.band_height(200)
    assert out.dtype == np.uint8
    assert out.shape == (30 + band, 200, 3)
    # The frame is copied unchanged below the band, in all three channels.
    for c in range(3):
        np.testing.assert_array_equal(out[band:, :, c], gray)
    # Dark band with light text: the corner is the band colour, some pixels are bright.
    header = out[:band]
    assert tuple(header[0, 0]) == video.BAND_BG
    assert header.max() >= 200
    assert (header.max(axis=2) >= 128).sum() > 50  # more than a speck: glyphs were drawn


def test_annotate_is_deterministic_and_text_dependent():
    gray = np.full((20, 300), 200, dtype=np.uint8)
    a = video.annotate(gray, CAPTION)
    np.testing.assert_array_equal(a, video.annotate(gray, CAPTION))
    b = video.annotate(gray, "step 13,000   accuracy 95.3 %")
    assert a.shape == b.shape  # band height depends on the width only: frames stack into a video
    assert not np.array_equal(a, b)


def test_band_height_scales_with_width_and_stays_block_aligned():
    assert video.band_height(1000) == 48  # 4.5 % of 1000, rounded up to a multiple of 8
    assert video.band_height(64) == video.MIN_BAND
    for w in (16, 64, 333, 1000, 4000):
        assert video.band_height(w) % 8 == 0
    assert video.band_height(4000) > video.band_height(1000)


@pytest.mark.parametrize("width", [16, 64])
def test_annotate_tiny_frames_keep_width(width):
    gray = np.zeros((8, width), dtype=np.uint8)
    out = video.annotate(gray, CAPTION + "   some very long extra field")
    assert out.shape == (8 + video.band_height(width), width, 3)
    assert out[: video.band_height(width)].max() > 100  # some text is still visible


def test_annotate_accepts_rgb_and_rejects_other_shapes():
    rgb = np.random.default_rng(2).integers(0, 256, size=(10, 100, 3), dtype=np.uint8)
    out = video.annotate(rgb, "hello")
    np.testing.assert_array_equal(out[video.band_height(100) :], rgb)
    with pytest.raises(ValueError):
        video.annotate(np.zeros((10, 100, 4), dtype=np.uint8), "x")
    with pytest.raises(ValueError):
        video.annotate(np.zeros((10, 100), dtype=np.float32), "x")


# ----------------------------------------------------------------------------- write_mp4


def test_write_mp4_roundtrip_counts_sizes_and_intensities(tmp_path):
    white = np.full((24, 32, 3), 255, dtype=np.uint8)
    black = np.zeros((24, 32, 3), dtype=np.uint8)
    path = tmp_path / "out.mp4"
    video.write_mp4([white, black], path, fps=8)

    frames = read_mp4(path)
    assert video.held_frames(8) == 8  # one second at 8 fps
    assert len(frames) == 2 + video.held_frames(8)
    assert frames[0].shape == (24, 32, 3)
    assert frames[0].mean() > 250
    assert frames[1].mean() < 5
    assert frames[-1].mean() < 5  # the held copies are the last frame
    assert os.listdir(tmp_path) == ["out.mp4"]  # no temporary file left behind


def test_write_mp4_pads_odd_gray_frames_to_even_size(tmp_path):
    # Horizontal gradient, 33 x 51: both sizes odd.
    ramp = np.tile(np.linspace(0, 255, 51).round().astype(np.uint8), (33, 1))
    path = tmp_path / "odd.mp4"
    video.write_mp4([ramp, 255 - ramp], str(path), fps=4)

    frames = read_mp4(path)
    assert len(frames) == 2 + video.held_frames(4)
    assert frames[0].shape == (34, 52, 3)
    # Content survives lossy coding: close to the source, and the padding repeats the edge.
    assert np.abs(frames[0][:33, :51, 0].astype(float) - ramp).mean() < 4
    assert np.abs(frames[1][:33, :51, 0].astype(float) - (255 - ramp)).mean() < 4
    assert abs(frames[0][:33, 51, 0].astype(float).mean() - 255) < 8
    assert abs(frames[0][33, :51, 0].astype(float).mean() - ramp[-1].mean()) < 8


def test_write_mp4_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        video.write_mp4([], tmp_path / "empty.mp4")
    with pytest.raises(ValueError):
        video.write_mp4([np.zeros((4, 4), np.uint8), np.zeros((4, 6), np.uint8)], tmp_path / "mixed.mp4")
    with pytest.raises(ValueError):
        video.write_mp4([np.zeros((4, 4), np.uint8)], tmp_path / "fps.mp4", fps=0)
    assert os.listdir(tmp_path) == []


def test_write_mp4_failure_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    import imageio_ffmpeg

    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous video")

    def broken_writer(tmp, *args, **kwargs):
        with open(tmp, "wb") as f:
            f.write(b"half a video")
        raise OSError("disk full")

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", broken_writer)
    with pytest.raises(OSError):
        video.write_mp4([np.zeros((4, 4), np.uint8)], path)
    assert path.read_bytes() == b"previous video"
    assert os.listdir(tmp_path) == ["out.mp4"]


# ----------------------------------------------------------------------------- write_gif


def test_write_gif_frames_size_loop_and_hold(tmp_path):
    frames = [np.full((30, 1000), 40 * i, dtype=np.uint8) for i in range(5)]
    path = tmp_path / "out.gif"
    video.write_gif(frames, path, fps=8, max_width=320)

    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == 5
        assert im.size == (320, 10)  # aspect kept: 30 * 320 / 1000 = 9.6 -> 10
        assert im.info["loop"] == 0  # loop forever
        assert 100 <= im.info["duration"] <= 130  # 125 ms, stored in centiseconds
        im.seek(2)
        assert abs(float(np.asarray(im.convert("L")).mean()) - 80) <= 3  # gray survives palette cut
        im.seek(4)
        assert im.info["duration"] >= 1000  # last frame held
    assert os.listdir(tmp_path) == ["out.gif"]


def test_write_gif_keeps_small_frames_and_rejects_empty(tmp_path):
    frames = [np.zeros((20, 40, 3), np.uint8), np.full((20, 40, 3), 255, np.uint8)]
    video.write_gif(frames, tmp_path / "small.gif", max_width=640)
    with Image.open(tmp_path / "small.gif") as im:
        assert im.size == (40, 20)
        assert im.n_frames == 2
    with pytest.raises(ValueError):
        video.write_gif([], tmp_path / "empty.gif")


# ----------------------------------------------------------------------------- write_progress


def test_write_progress_writes_captioned_mp4_and_gif(tmp_path):
    frames = [video.prob_to_gray(np.full((30, 64), p)) for p in (0.0, 0.5, 1.0)]
    captions = [f"step {s:,}   accuracy {a} %" for s, a in ((0, 50.0), (10, 75.0), (20, 99.9))]
    mp4, gif = tmp_path / "progress.mp4", tmp_path / "progress.gif"
    video.write_progress(frames, captions, mp4, gif, fps=8)

    band = video.band_height(64)
    decoded = read_mp4(mp4)
    assert len(decoded) == 3 + video.held_frames(8)
    assert decoded[0].shape == (30 + band, 64, 3)
    # Below the band: black, mid-gray, white.
    assert decoded[0][band + 4 :].mean() < 5
    assert abs(decoded[1][band + 4 :].mean() - 128) < 5
    assert decoded[2][band + 4 :].mean() > 250
    with Image.open(gif) as im:
        assert im.n_frames == 3
    assert sorted(os.listdir(tmp_path)) == ["progress.gif", "progress.mp4"]

    with pytest.raises(ValueError):
        video.write_progress(frames, captions[:2], mp4, gif)


# ----------------------------------------------------------------------------- plots


def test_save_samples_plot_writes_png(tmp_path):
    rng = np.random.default_rng(3)
    yx = np.stack([rng.uniform(0, 300, 1024), rng.uniform(0, 1000, 1024)], axis=1)
    labels = (yx[:, 0] > 150).astype(np.uint8)
    path = tmp_path / "samples.png"
    video.save_samples_plot(yx, labels, 300, 1000, path)

    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert 800 <= w <= 2000 and 250 <= h <= 1000
        assert w > 1.5 * h  # a wide picture gives a wide plot
        rgb = np.asarray(im.convert("RGB"), dtype=int)
    # Both classes are drawn: near-black ink points and the light blue background points.
    assert (rgb.max(axis=2) < 60).sum() > 100
    assert (np.abs(rgb - [0x8C, 0xBB, 0xE6]).max(axis=2) < 10).sum() > 100
    assert os.listdir(tmp_path) == ["samples.png"]

    with pytest.raises(ValueError):
        video.save_samples_plot(yx[:, :1], labels, 300, 1000, tmp_path / "bad.png")


def test_save_final_plot_wide_is_stacked_at_native_resolution(tmp_path):
    target = np.ones((300, 1000), dtype=np.uint8)
    target[100:140, 200:300] = 0  # a 40 x 100 black block
    prob = target.astype(np.float64)
    path = tmp_path / "final.png"
    video.save_final_plot(target, prob, path, title="relu_1 · step 100,000 · accuracy 96.1 %")

    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        gray = np.asarray(im.convert("L"))
    assert 1000 <= w <= 1100  # native width plus margins
    assert h > 2 * 300  # stacked vertically
    # Exactly two black 40 x 100 blocks (target and prediction): 1 image pixel = 1 PNG pixel.
    black = gray < 10
    assert black.sum() == 2 * 40 * 100
    cols = np.flatnonzero(black.any(axis=0))
    assert cols.max() - cols.min() + 1 == 100
    assert os.listdir(tmp_path) == ["final.png"]


def test_save_final_plot_square_is_side_by_side_and_upscaled(tmp_path):
    target = np.ones((64, 64), dtype=np.uint8)
    target[:, :32] = 0
    prob = np.where(target == 1, 0.9, np.nan)  # NaN is drawn as undecided gray, not a hole
    path = tmp_path / "final.png"
    video.save_final_plot(target, prob, path)

    with Image.open(path) as im:
        w, h = im.size
        gray = np.asarray(im.convert("L"))
    assert w > 1.5 * h  # side by side
    assert w >= 2 * 64 * 6  # small pictures are scaled up to stay readable
    assert (np.abs(gray.astype(int) - 128) <= 1).sum() > 32 * 64  # the NaN half is mid-gray
    with pytest.raises(ValueError):
        video.save_final_plot(target, prob[:, :10], tmp_path / "bad.png")


def test_save_final_plot_failure_leaves_no_temp(tmp_path, monkeypatch):
    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(OSError):
        video.save_final_plot(np.ones((4, 4), np.uint8), np.ones((4, 4)), tmp_path / "final.png")
    assert os.listdir(tmp_path) == []
