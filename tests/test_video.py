"""Tests for overfit.video: MP4/GIF writing and the captioned progress video.

Everything is read back (imageio's FFMPEG reader, Pillow) and checked by value: frame
counts, sizes, pixel intensities, and that no temporary file is left in the folder.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence

import imageio.v2 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from overfit import images, video
from overfit.captions import BAND_BG, band_height


class Counted(Sequence):
    """Frames made when accessed, like frames read from disk: records which were read and the most alive at once."""

    def __init__(self, count: int, make):
        self.count, self.make = count, make
        self.read: list[int] = []
        self.alive = self.peak = 0
        self._lock = threading.Lock()  # write_progress reads from two threads

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        if not isinstance(i, int):
            raise TypeError("only single frames")
        i = i + self.count if i < 0 else i
        if not 0 <= i < self.count:
            raise IndexError(i)
        frame = self.make(i)
        with self._lock:
            self.read.append(i)
            self.alive += 1
            self.peak = max(self.peak, self.alive)
        weakref.finalize(frame, self._gone)
        return frame

    def _gone(self) -> None:
        with self._lock:
            self.alive -= 1


def read_mp4(path) -> list[np.ndarray]:
    # A comprehension, not list(reader): the reader's len() is inf and list() chokes on it.
    reader = iio.get_reader(path, format="FFMPEG")
    try:
        return [frame for frame in reader]
    finally:
        reader.close()


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
    with pytest.raises(ValueError, match="at least 2 frames"):
        video.write_mp4([np.zeros((4, 4), np.uint8)], tmp_path / "cap.mp4", max_frames=1)
    with pytest.raises(ValueError, match="max_side"):
        video.write_mp4([np.zeros((4, 4), np.uint8)], tmp_path / "side.mp4", max_side=1)
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


def test_write_mp4_failure_on_a_later_frame_keeps_old_file(tmp_path):
    # Frames are checked as they are streamed: a bad frame after the first still leaves nothing half-made.
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous video")
    frames = [np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((4, 6), np.uint8)]
    with pytest.raises(ValueError, match="frame 2: shape"):
        video.write_mp4(frames, path)
    assert path.read_bytes() == b"previous video"
    assert os.listdir(tmp_path) == ["out.mp4"]


# ----------------------------------------------------------------------------- bounded memory: thin, shrink, stream


def test_thin_keeps_first_last_and_an_even_spread():
    assert video.thin(5, 300) == [0, 1, 2, 3, 4]
    assert video.thin(300, 300) == list(range(300))
    kept = video.thin(1000, 300)
    assert len(kept) == 300 and kept[0] == 0 and kept[-1] == 999
    assert set(np.diff(kept)) <= {3, 4}  # 999 / 299 = 3.34: evenly spread, strictly increasing
    assert video.thin(11, 3) == [0, 5, 10]
    with pytest.raises(ValueError, match="at least 2 frames"):
        video.thin(10, 1)


@pytest.mark.parametrize(
    ("size", "bounds", "even", "expected"),
    [
        ((30, 40), (64, 64), True, (30, 40)),  # fits: never enlarged, never made even
        ((1000, 2000), (1024, 1024), True, (512, 1024)),
        ((2000, 600), (1024, 1024), True, (1024, 308)),  # 307.2 -> even 308
        ((2000, 601), (1024, 1024), False, (1024, 308)),
        ((30, 1000), (320, 640), False, (10, 320)),  # 9.6 -> 10
    ],
)
def test_fit_size_keeps_aspect_within_bounds(size, bounds, even, expected):
    assert video.fit_size(*size, *bounds, even=even) == expected


def test_caption_fit_leaves_room_for_the_band():
    assert video.caption_fit(30, 64, 1024) == (30, 64)  # small pictures keep their size
    for height, width in ((4096, 4096), (1000, 2000), (3000, 200), (1024, 1024)):
        h, w = video.caption_fit(height, width, 1024)
        assert h % 2 == 0 and w % 2 == 0
        assert w <= 1024 and h + band_height(w) <= 1024
        assert abs(w / h - width / height) < 0.05 * width / height  # aspect kept


def test_write_mp4_reads_one_frame_at_a_time(tmp_path):
    frames = Counted(40, lambda i: np.full((32, 64), 6 * i, np.uint8))
    video.write_mp4(frames, tmp_path / "lazy.mp4", fps=4)
    assert frames.read == list(range(40))  # each frame read once, in order
    assert frames.peak <= 2  # never all 40 in memory
    nframes, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "lazy.mp4"))
    assert nframes == 40 + video.held_frames(4)


def test_write_mp4_thins_to_max_frames_keeping_first_and_last(tmp_path):
    frames = Counted(50, lambda i: np.full((32, 64), 5 * i, np.uint8))
    video.write_mp4(frames, tmp_path / "thin.mp4", fps=4, max_frames=10)
    assert frames.read == video.thin(50, 10) and frames.read[0] == 0 and frames.read[-1] == 49
    decoded = read_mp4(tmp_path / "thin.mp4")
    assert len(decoded) == 10 + video.held_frames(4)
    assert decoded[0].mean() < 5 and abs(decoded[9].mean() - 245) < 5  # frames 0 and 49


def test_write_mp4_default_cap_is_max_frames(tmp_path):
    frames = Counted(video.MP4_MAX_FRAMES + 20, lambda i: np.full((16, 16), i % 256, np.uint8))
    video.write_mp4(frames, tmp_path / "cap.mp4", fps=8)
    nframes, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "cap.mp4"))
    assert nframes == video.MP4_MAX_FRAMES + video.held_frames(8)
    assert frames.read == video.thin(len(frames), video.MP4_MAX_FRAMES)


def test_write_mp4_shrinks_large_frames_to_even_sizes(tmp_path):
    # 2000 x 600 (tall) RGB: left half dark, right half bright.
    tall = np.zeros((2000, 600, 3), np.uint8)
    tall[:, 300:] = 255
    video.write_mp4([tall, tall], tmp_path / "big.mp4", fps=2)
    decoded = read_mp4(tmp_path / "big.mp4")
    assert decoded[0].shape == (video.MP4_MAX_SIDE, 308, 3)  # 600 * 1024 / 2000 = 307.2 -> 308
    assert decoded[0][:, :140].mean() < 5 and decoded[0][:, 168:].mean() > 250


def test_write_gif_reads_lazily_thins_and_keeps_first_and_last(tmp_path):
    def dot(i):  # a black 16 x 24 frame with one white pixel that moves: every frame differs
        frame = np.zeros((16, 24), np.uint8)
        frame[i % 16, i // 16] = 255
        return frame

    frames = Counted(150, dot)
    video.write_gif(frames, tmp_path / "thin.gif", fps=8)
    assert frames.read == video.thin(150, video.GIF_MAX_FRAMES)
    assert frames.peak <= 2
    with Image.open(tmp_path / "thin.gif") as im:
        assert im.n_frames == video.GIF_MAX_FRAMES
        assert np.argwhere(np.asarray(im.convert("L")) > 128).tolist() == [[0, 0]]  # frame 0
        im.seek(im.n_frames - 1)
        assert np.argwhere(np.asarray(im.convert("L")) > 128).tolist() == [[149 % 16, 149 // 16]]  # frame 149


def test_write_gif_shrinks_tall_frames_too(tmp_path):
    frames = [np.full((1000, 40), 40 * i, np.uint8) for i in range(2)]
    video.write_gif(frames, tmp_path / "tall.gif", max_width=320, max_height=200)
    with Image.open(tmp_path / "tall.gif") as im:
        assert im.size == (8, 200)


def test_write_progress_streams_frames_and_captions_at_the_shown_size(tmp_path):
    frames = Counted(30, lambda i: np.full((32, 64), 8 * i, np.uint8))
    captions = [f"step {10 * i}" for i in range(30)]
    mp4, gif = tmp_path / "progress.mp4", tmp_path / "progress.gif"
    video.write_progress(frames, captions, mp4, gif, fps=8)
    assert frames.peak <= 4  # at most a couple per writer thread, never all 30
    assert sorted(frames.read) == sorted(list(range(30)) * 2)  # each frame read once per video
    nframes, _ = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert nframes == 30 + video.held_frames(8)


def test_write_progress_shrinks_large_frames_before_captioning(tmp_path):
    picture = np.zeros((1000, 2000), np.uint8)
    picture[:, 1000:] = 255
    mp4, gif = tmp_path / "progress.mp4", tmp_path / "progress.gif"
    video.write_progress([picture, picture], ["step 0", "step 10"], mp4, gif, fps=2)
    # MP4: 2000 wide -> 1024; the band is the one for a 1024-wide frame, drawn at that size.
    band = band_height(1024)
    decoded = read_mp4(mp4)
    assert decoded[0].shape == (512 + band, 1024, 3)
    assert tuple(decoded[0][2, -2]) == pytest.approx(BAND_BG, abs=6)  # the band's corner
    assert decoded[0][band + 4 :, :500].mean() < 5 and decoded[0][band + 4 :, 524:].mean() > 250
    with Image.open(gif) as im:
        assert im.size == (video.GIF_MAX_SIDE, 320 + band_height(video.GIF_MAX_SIDE))


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

    band = band_height(64)
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
