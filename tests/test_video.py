"""Tests for overfit.video: captions, MP4/GIF writing and the captioned progress video.

Everything is read back (imageio's FFMPEG reader, Pillow) and checked by value: frame
counts, sizes, pixel intensities, and that no temporary file is left in the folder.
"""

from __future__ import annotations

import os

import imageio.v2 as iio
import numpy as np
import pytest
from PIL import Image

from overfit import images, video

CAPTION = "step 12,000   accuracy 95.3 %"


def read_mp4(path) -> list[np.ndarray]:
    # A comprehension, not list(reader): the reader's len() is inf and list() chokes on it.
    reader = iio.get_reader(path, format="FFMPEG")
    try:
        return [frame for frame in reader]
    finally:
        reader.close()


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
    frames = [images.to_uint8(np.full((30, 64), p)) for p in (0.0, 0.5, 1.0)]
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


# ----------------------------------------------------------------------------- the MP4 beside other work


def test_mp4_alongside_gives_the_same_video_and_runs_the_block_meanwhile(tmp_path):
    frames = [np.full((24, 32, 3), 60 * i, dtype=np.uint8) for i in range(4)]
    video.write_mp4(frames, tmp_path / "plain.mp4", fps=8)
    ran = []
    with video.mp4_alongside(frames, tmp_path / "beside.mp4", fps=8):
        ran.append(True)
    assert ran == [True]
    plain, beside = read_mp4(tmp_path / "plain.mp4"), read_mp4(tmp_path / "beside.mp4")
    assert len(beside) == 4 + video.held_frames(8)
    for a, b in zip(plain, beside):
        np.testing.assert_array_equal(a, b)


def test_mp4_alongside_raises_the_writers_error_after_the_block(tmp_path):
    ran = []
    with pytest.raises(ValueError, match="differs"):
        with video.mp4_alongside([np.zeros((4, 4), np.uint8), np.zeros((4, 6), np.uint8)], tmp_path / "bad.mp4"):
            ran.append(True)
    assert ran == [True]  # the block ran to its end first
    assert os.listdir(tmp_path) == []


def test_write_progress_runs_meanwhile_beside_the_videos(tmp_path):
    frames = [images.to_uint8(np.full((30, 64), p)) for p in (0.0, 1.0)]
    mp4, gif = tmp_path / "progress.mp4", tmp_path / "progress.gif"
    video.write_progress(frames, ["step 0", "step 10"], mp4, gif, meanwhile=lambda: (tmp_path / "final.png").write_bytes(b"x"))
    assert len(read_mp4(mp4)) == 2 + video.held_frames(8)
    with Image.open(gif) as im:
        assert im.n_frames == 2
    assert sorted(os.listdir(tmp_path)) == ["final.png", "progress.gif", "progress.mp4"]
