"""Property tests of the picture loader: any file is a Target or one `OverfitError` line, never another exception.

Every supported format (PNG, JPEG, BMP, GIF, WebP, TIFF) in several pixel modes is
written small by Pillow, then damaged: cut short, bytes flipped or overwritten, a
stretch zeroed; plus files of random bytes, bare or behind each format's signature.
`targets.load_target` must return a Target of the picture's size or refuse with an
`OverfitError` whose message is a single line. Examples are derandomized.
"""

from __future__ import annotations

import io
import itertools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from overfit.config import DataConfig
from overfit.errors import OverfitError
from overfit.targets import Target, load_target

# Pillow warns about the damage it reads past (a TIFF tag beyond the end of the file); that is the point here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Pixel modes each format writes, and extra save options worth varying.
MODES = {
    "PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "BMP": ["1", "L", "P", "RGB"],
    "GIF": ["L", "P"],
    "WEBP": ["RGB", "RGBA"],
    "TIFF": ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "F"],
}
OPTIONS = {
    "PNG": [{}, {"optimize": True}],
    "JPEG": [{}, {"quality": 5}, {"progressive": True}],
    "BMP": [{}],
    "GIF": [{}],
    "WEBP": [{"lossless": True}, {"quality": 10}],
    "TIFF": [{}, {"compression": "tiff_lzw"}, {"compression": "tiff_deflate"}, {"compression": "packbits"}]
    if features.check("libtiff") else [{}],
}
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"II*\x00", b"MM\x00*"]
MAX_PIXELS = 1 << 20  # a damaged header may claim any size; the loader must refuse big ones before decoding

_counter = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("pictures")


def picture_bytes(fmt: str, mode: str, width: int, height: int, seed: int, options: dict) -> bytes:
    """A small picture of random pixels in `fmt` and `mode`, as Pillow writes it."""
    rng = np.random.default_rng(seed)
    if mode == "F":
        img = Image.fromarray(rng.random((height, width), dtype=np.float32))  # mode F
    elif mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))  # mode I;16
    else:
        rgba = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8))  # mode RGBA
        img = rgba.convert("RGB").convert(mode) if mode in ("1", "L", "P", "CMYK", "RGB") else rgba.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


@st.composite
def valid_pictures(draw: st.DrawFn, min_side: int = 1) -> bytes:
    fmt = draw(st.sampled_from(sorted(MODES)))
    width, height = draw(st.integers(min_side, 12)), draw(st.integers(min_side, 12))
    return picture_bytes(fmt, draw(st.sampled_from(MODES[fmt])), width, height,
                         draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from(OPTIONS[fmt])))


@st.composite
def damaged_pictures(draw: st.DrawFn) -> bytes:
    """A valid small picture with one to three kinds of damage."""
    data = bytearray(draw(valid_pictures(min_side=2)))
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["cut", "flip", "set", "zero", "insert"]))
        # Half the damage lands past the first quarter: a readable header, then broken pixel data.
        at = draw(st.integers(0, max(0, len(data) - 1)) | st.integers(len(data) // 4, max(len(data) // 4, len(data) - 1)))
        if kind == "cut":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif kind == "zero":
            end = at + draw(st.integers(1, 16))
            data[at:end] = bytes(len(data[at:end]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


random_files = st.binary(max_size=256) | st.builds(lambda sig, rest: sig + rest, st.sampled_from(SIGNATURES), st.binary(max_size=256))


def check_loads(folder, data: bytes, mode: str) -> None:
    """load_target gives a Target shaped like the picture, or a one-line OverfitError; nothing else."""
    path = folder / f"picture-{next(_counter)}"
    path.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a one-colour picture warns "nothing to learn"; not the question here
            target = load_target(DataConfig(image=str(path), mode=mode, max_pixels=MAX_PIXELS))
    except OverfitError as e:
        message = str(e)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return
    finally:
        path.unlink()
    assert isinstance(target, Target)
    h, w = target.labels.shape
    assert h >= 2 and w >= 2 and h * w <= MAX_PIXELS
    assert target.image.shape == ((h, w, 3) if mode == "rgb" else (h, w)) and target.image.dtype == np.uint8
    assert set(np.unique(target.labels)) <= {0, 1}


@SETTINGS
@given(valid_pictures(), st.sampled_from(["binary", "gray", "rgb"]))
def test_every_supported_format_and_mode_loads_or_is_refused_in_one_line(folder, data, mode):
    check_loads(folder, data, mode)


@settings(SETTINGS, max_examples=400)
@given(damaged_pictures(), st.sampled_from(["binary", "gray", "rgb"]))
def test_damaged_pictures_load_or_are_refused_in_one_line(folder, data, mode):
    check_loads(folder, data, mode)


@SETTINGS
@given(random_files, st.sampled_from(["binary", "rgb"]))
def test_random_bytes_are_refused_in_one_line(folder, data, mode):
    check_loads(folder, data, mode)


@pytest.mark.parametrize("fmt", sorted(MODES))
def test_a_valid_picture_of_each_format_loads_at_its_size(folder, fmt):
    """The generator makes real pictures: each format's RGB-like mode loads at the size written."""
    mode = "RGB" if "RGB" in MODES[fmt] else "L"
    path = folder / f"valid.{fmt.lower()}"
    path.write_bytes(picture_bytes(fmt, mode, 7, 5, 0, OPTIONS[fmt][0]))
    assert load_target(DataConfig(image=str(path), mode="rgb")).image.shape == (5, 7, 3)
