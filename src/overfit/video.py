"""Videos of training: captioned progress frames, the H.264 MP4 and the looping GIF.

During training the network is evaluated on every pixel and each prediction is kept as a
frame. This module turns those frames into what people watch: an H.264 MP4 (`write_mp4`)
and a small looping GIF (`write_gif`), and both at once for a run, each frame captioned
(`write_progress`, which can do other work while ffmpeg encodes). The caption band drawn
on each frame is in captions.py, the figures of a run in plots.py, the pixel conversion
([0, 1] -> uint8) in images.py.

Conventions:
- Frames are numpy arrays, row 0 = top of the picture, uint8, (H, W) gray or (H, W, 3) RGB.
- Every file is written through `files.atomic_path`, so a crash or a reader polling the run
  folder never sees half a file.
- Writing a video takes memory for a frame or two, not for all of them: the writers take any
  sequence of frames, read a lazy one (`LazyFrames`, a run folder's `StoredFrames`) one
  frame at a time, keep at most MP4_MAX_FRAMES / GIF_MAX_FRAMES of them (`thin`: the first,
  the last and an even spread) and shrink large ones to MP4_MAX_SIDE / GIF_MAX_SIDE.
- Video goes through imageio-ffmpeg's bundled ffmpeg binary, never a system ffmpeg, so
  outputs look the same on every machine (captions.py does the same for fonts).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

# As _captions: `captions` names the caption texts that `captioned` and `write_progress` take.
from . import captions as _captions
from .files import atomic_path

# How long the last frame stays on screen in the MP4 and GIF, so viewers see the result.
HOLD_LAST_S = 1.0

# Bounds that keep a video's memory and file size independent of the run's length and picture
# size: frames are thinned to at most this many (`thin`) and shrunk to this long side. The MP4
# keeps a 1024 px picture crisp on any screen; the GIF is a preview, held in memory whole.
MP4_MAX_FRAMES = 300
MP4_MAX_SIDE = 1024
GIF_MAX_FRAMES = 100
GIF_MAX_SIDE = 640

# GIF frames are cut to this many gray levels: steps of 4/255 do not show as banding in a
# preview, and leaving palette entries free lets Pillow mark unchanged pixels transparent,
# which makes a slowly converging run several times smaller.
GIF_GRAY_LEVELS = 64


# ----------------------------------------------------------------------------- lazy frames, thinning, shrinking


class LazyFrames(Sequence):
    """A sequence whose item i is `load(i)`, computed each time it is accessed and not kept.

    The writers below take any sequence of frames. Given a lazy one (this, or a run folder's
    `StoredFrames.pictures`) they make only the frames they keep, one at a time, so writing a
    video needs memory for a frame or two however many and however large the frames are.
    """

    def __init__(self, count: int, load: Callable[[int], np.ndarray]) -> None:
        self._indices = range(count)  # a slice of a LazyFrames narrows this range
        self._load = load

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index):  # int -> frame; slice -> LazyFrames
        if isinstance(index, slice):
            part = LazyFrames(0, self._load)
            part._indices = self._indices[index]
            return part
        return self._load(self._indices[index])


def thin(count: int, limit: int) -> list[int]:
    """Indices of the frames a video keeps out of `count`, in order.

    All of them when `count <= limit`; otherwise `limit` of them: the first, the last and an
    even spread in between (equal steps in index, rounded). Evaluations are usually evenly
    spaced in steps, so the video keeps showing the whole run, its early learning included,
    only with fewer frames per stretch of training.
    """
    if limit < 2:
        raise ValueError(f"a video keeps at least 2 frames (the first and the last), got a limit of {limit}")
    if count <= limit:
        return list(range(count))
    # Spacing > 1, so rounding half up never merges two picks.
    return np.floor(np.linspace(0, count - 1, limit) + 0.5).astype(int).tolist()


def _even(x: float) -> int:
    """`x` rounded to the nearest even integer, at least 2."""
    return max(2, 2 * int(np.floor(x / 2 + 0.5)))


def fit_size(height: int, width: int, max_width: int, max_height: int, even: bool = False) -> tuple[int, int]:
    """(h, w) of a height x width frame shrunk to fit max_width x max_height, aspect ratio kept; never enlarged.

    A frame that fits keeps its size. With `even`, a shrunk frame gets even sizes (H.264's
    yuv420p needs them), still within the bounds.
    """
    if width <= max_width and height <= max_height:
        return height, width
    scale = min(max_width / width, max_height / height)
    if even:
        return min(_even(height * scale), max(2, max_height // 2 * 2)), min(_even(width * scale), max(2, max_width // 2 * 2))
    return max(1, min(max_height, round(height * scale))), max(1, min(max_width, round(width * scale)))


def caption_fit(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) to shrink a height x width picture to so that it and `captions.annotate`'s band fit max_side x max_side.

    Never enlarges. A shrunk picture gets even sizes, so the captioned frame (h + band, w) is
    even too (the band is a multiple of 8 px) and goes to H.264 as it is.
    """
    if width <= max_side and height + _captions.band_height(width) <= max_side:
        return height, width
    scale = min(max_side / width, max_side / (height + _captions.band_height(width)))
    h, w = _even(height * scale), min(_even(width * scale), max(2, max_side // 2 * 2))
    if h + _captions.band_height(w) > max_side:
        # Rounding went over: take the height that is left under the band (a narrower frame
        # has a band no taller, so this fits).
        h = max(2, (max_side - _captions.band_height(w)) // 2 * 2)
        w = min(w, _even(width * h / height))
    return h, w


def _check_frame(frame: np.ndarray, index: int) -> np.ndarray:
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        raise ValueError(f"frame {index}: expected uint8, got {a.dtype}")
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"frames must be (H, W) or (H, W, 3), got {a.shape}")
    return a


def resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """A uint8 (H, W) or (H, W, 3) frame resized (LANCZOS) to height x width; the same array when it has that size."""
    if frame.shape[:2] == (height, width):
        return frame
    img = Image.fromarray(np.ascontiguousarray(frame), "L" if frame.ndim == 2 else "RGB")
    # reducing_gap: a large frame is first reduced by a whole factor (box filter, fast),
    # the final LANCZOS pass then works on at most 3x the output size.
    return np.asarray(img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0))


def _kept(frames: Sequence[np.ndarray], max_frames: int) -> list[int]:
    try:
        count = len(frames)
    except TypeError:
        raise TypeError(f"frames must be a sequence (len and indexing, e.g. a list or LazyFrames), got {type(frames).__name__}") from None
    if count == 0:
        raise ValueError("no frames to write")
    return thin(count, max_frames)


def _checked(frames: Sequence[np.ndarray], keep: list[int]) -> Iterator[np.ndarray]:
    """The frames at `keep`, read one at a time and checked: uint8, (H, W) or (H, W, 3), all one shape."""
    shape = None
    for i in keep:
        a = _check_frame(frames[i], i)
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise ValueError(f"frame {i}: shape {a.shape} differs from frame {keep[0]}'s {shape}")
        yield a
        del a  # while the next frame is read, this one is no longer held here


# ----------------------------------------------------------------------------- MP4 and GIF


def _check_fps(fps: float) -> None:
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")


def held_frames(fps: float) -> int:
    """Extra copies of the last frame that `write_mp4` appends (HOLD_LAST_S of video)."""
    return max(0, round(HOLD_LAST_S * fps))


def _h264_frame(frame: np.ndarray, max_side: int) -> np.ndarray:
    """Shrunk to fit max_side (even sizes), odd sizes padded, RGB, contiguous: ready for ffmpeg."""
    a = resize(frame, *fit_size(frame.shape[0], frame.shape[1], max_side, max_side, even=True))
    height, width = a.shape[:2]
    if height % 2 or width % 2:
        # Edge padding (bottom row / right column repeated) is invisible, unlike a black bar.
        pad = ((0, height % 2), (0, width % 2)) + ((0, 0),) * (a.ndim - 2)
        a = np.pad(a, pad, mode="edge")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a)


def write_mp4(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike,
    fps: float = 8,
    max_side: int = MP4_MAX_SIDE,
    max_frames: int = MP4_MAX_FRAMES,
) -> None:
    """Write frames as an H.264 (yuv420p) MP4 that browsers and phones play, holding one frame at a time.

    `frames`: uint8, all one shape, (H, W) gray or (H, W, 3) RGB, in any sequence; a lazy one
    (`LazyFrames`, a run folder's `StoredFrames.pictures`) is read frame by frame as ffmpeg
    takes them, and only at the indices kept, so memory does not grow with the number or size
    of the frames. More than `max_frames` (>= 2) frames are thinned by `thin` (the first, the
    last and an even spread). A frame whose long side is over `max_side` is shrunk (LANCZOS,
    aspect kept) to even sizes within it; a smaller frame keeps its size, and an odd height or
    width is padded by one edge pixel (bottom/right), as yuv420p needs even sizes: (H + H % 2,
    W + W % 2). The last frame is repeated `held_frames(fps)` more times, so the file has
    min(len(frames), max_frames) + held_frames(fps) frames. Written atomically: on any error
    the file at `path` is left as it was. Raises ValueError on no frames, a frame that is not
    uint8, mixed shapes, a non-positive fps or limits too small.
    """
    import imageio_ffmpeg

    _check_fps(fps)
    if max_side < 2:
        raise ValueError(f"max_side must be >= 2, got {max_side}")
    stream = _checked(frames, _kept(frames, max_frames))
    first = _h264_frame(next(stream), max_side)  # checked before any file is made
    height, width = first.shape[:2]

    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            tmp,
            (width, height),  # ffmpeg wants (width, height)
            fps=fps,
            codec="libx264",  # named, so imageio-ffmpeg skips probing every encoder
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,
            # We already made the size even: 1 stops imageio-ffmpeg rescaling to 16 px blocks.
            macro_block_size=1,
            ffmpeg_log_level="error",
            # crf 18: visually lossless for crisp text and hard ink edges, still small files.
            # faststart: moov atom first, so the web viewer can start playing at once.
            output_params=["-crf", "18", "-preset", "medium", "-movflags", "+faststart"],
        )
        writer.send(None)  # prime the generator
        try:
            last, first = first, None
            writer.send(last)
            for frame in stream:
                last = _h264_frame(frame, max_side)
                writer.send(last)
            for _ in range(held_frames(fps)):
                writer.send(last)
        finally:
            writer.close()
        # imageio-ffmpeg does not report ffmpeg's exit status: an empty file means it failed.
        if os.path.getsize(tmp) == 0:
            raise RuntimeError(f"ffmpeg wrote nothing for {path}")


def _gif_frame(frame: np.ndarray, max_width: int, max_height: int) -> Image.Image:
    """A frame as a small 8-bit GIF frame: shrunk to fit, gray cut to GIF_GRAY_LEVELS, colour to a palette."""
    a = resize(frame, *fit_size(frame.shape[0], frame.shape[1], max_width, max_height))
    if a.ndim == 2 or (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])):
        # Gray frames (those from `captions.annotate` are R == G == B) are saved as gray cut to
        # GIF_GRAY_LEVELS, which compresses far better than a per-frame adaptive palette.
        step = 255.0 / (GIF_GRAY_LEVELS - 1)
        gray = a if a.ndim == 2 else a[..., 0]
        levels = np.floor(gray.astype(np.float64) / step + 0.5) * step
        return Image.fromarray(np.floor(levels + 0.5).astype(np.uint8), "L")
    # Colour: Pillow's adaptive palette, as its GIF writer would choose, made now so a held
    # frame takes one byte per pixel.
    return Image.fromarray(np.ascontiguousarray(a), "RGB").convert("P", palette=Image.Palette.ADAPTIVE)


def write_gif(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike,
    fps: float = 8,
    max_width: int = GIF_MAX_SIDE,
    max_height: int = GIF_MAX_SIDE,
    max_frames: int = GIF_MAX_FRAMES,
) -> None:
    """Write frames as a small looping GIF: thinned, shrunk, 8-bit.

    Same frame rules as `write_mp4`, read the same way (one at a time, only those kept).
    More than `max_frames` frames are thinned by `thin`; each frame is shrunk (LANCZOS, aspect
    kept) to fit `max_width` x `max_height` and made 8-bit at once, so what is held until
    Pillow writes the file is at most about max_frames x max_width x max_height bytes. The last
    frame is shown HOLD_LAST_S longer. Pillow merges identical consecutive frames into one
    longer frame, so the GIF can have fewer frames than kept (never more). Written atomically.
    """
    _check_fps(fps)
    if max_width < 1 or max_height < 1:
        raise ValueError(f"max_width and max_height must be >= 1, got {max_width} and {max_height}")
    images = [_gif_frame(frame, max_width, max_height) for frame in _checked(frames, _kept(frames, max_frames))]

    frame_ms = 1000.0 / fps
    durations = [round(frame_ms)] * len(images)
    durations[-1] = round(frame_ms + 1000.0 * HOLD_LAST_S)
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,  # loop forever
            optimize=True,  # also: unchanged pixels become transparent in later frames
        )


@contextlib.contextmanager
def mp4_alongside(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike,
    fps: float = 8,
    max_side: int = MP4_MAX_SIDE,
    max_frames: int = MP4_MAX_FRAMES,
) -> Iterator[None]:
    """`write_mp4` on a helper thread while the `with` block runs; waits for it at the end and raises what it raised.

    ffmpeg encodes in its own process, so with a second core the encoding overlaps the
    block's work; the helper thread only reads frames, pipes them to ffmpeg and waits,
    which holds the GIL for little of the time.
    """
    failed: list[BaseException] = []

    def work() -> None:
        try:
            write_mp4(frames, path, fps=fps, max_side=max_side, max_frames=max_frames)
        except BaseException as e:  # handed to the caller below
            failed.append(e)

    worker = threading.Thread(target=work, name="overfit-mp4")
    worker.start()
    try:
        yield
    finally:
        worker.join()
    if failed:
        raise failed[0]


def captioned(frames: Sequence[np.ndarray], captions: Sequence[str], max_side: int) -> LazyFrames:
    """`captions.annotate(frame, caption)` for each pair, made when accessed, shrunk first so the result fits max_side x max_side.

    The caption is drawn at the size the frame is shown, so its text stays sharp.
    """
    if len(frames) != len(captions):
        raise ValueError(f"{len(frames)} frames but {len(captions)} captions")

    def load(i: int) -> np.ndarray:
        picture = _check_frame(frames[i], i)
        return _captions.annotate(resize(picture, *caption_fit(picture.shape[0], picture.shape[1], max_side)), captions[i])

    return LazyFrames(len(frames), load)


def write_progress(
    frames: Sequence[np.ndarray],
    captions: Sequence[str],
    mp4_path: str | os.PathLike,
    gif_path: str | os.PathLike,
    fps: float = 8,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Caption each progress frame with `captions.annotate` and write both the MP4 and the GIF.

    `frames`: (H, W) or (H, W, 3) uint8 pictures, best a lazy sequence (a run folder's
    `StoredFrames.pictures`): each writer reads only the frames it keeps (`thin`: at most
    MP4_MAX_FRAMES and GIF_MAX_FRAMES, the first and last included), one at a time, shrinks
    each so that it and its caption fit MP4_MAX_SIDE or GIF_MAX_SIDE, and captions it at that
    size. The GIF, and `meanwhile()` if given (e.g. drawing final.png), run while ffmpeg
    encodes the MP4.
    """
    if len(frames) != len(captions):
        raise ValueError(f"{len(frames)} frames but {len(captions)} captions")
    if len(frames) == 0:
        raise ValueError("no frames to write")
    with mp4_alongside(captioned(frames, captions, MP4_MAX_SIDE), mp4_path, fps=fps, max_frames=MP4_MAX_FRAMES):
        if meanwhile is not None:
            meanwhile()
        write_gif(captioned(frames, captions, GIF_MAX_SIDE), gif_path, fps=fps, max_frames=GIF_MAX_FRAMES)
