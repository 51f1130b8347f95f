"""Tests for overfit.targets: text rendering, picture loading in every mode and format, errors."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from overfit.config import DataConfig
from overfit.targets import (
    FONT_PATH,
    NothingToLearnWarning,
    Target,
    TargetError,
    binarize,
    load_image,
    load_target,
    render_text,
)


def _ink_rows_cols(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ink = binarize(gray) == 0
    return np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))


def _runs(indices: np.ndarray) -> int:
    """Number of maximal runs of consecutive integers."""
    return int(indices.size > 0) + int(np.count_nonzero(np.diff(indices) > 1))


# -- rendered text ---------------------------------------------------------------


def test_font_is_matplotlibs_bundled_dejavu_bold():
    assert FONT_PATH.name == "DejaVuSans-Bold.ttf"
    assert FONT_PATH.is_file()
    assert "matplotlib" in FONT_PATH.parts or "mpl-data" in FONT_PATH.parts


def test_builtin_text_fills_the_canvas_centred():
    gray = render_text("OVERFIT")
    assert gray.shape == (300, 1000)
    assert gray.dtype == np.uint8
    labels = binarize(gray)
    assert set(np.unique(labels)) == {0, 1}
    ink_fraction = 1.0 - labels.mean()
    assert 0.15 < ink_fraction < 0.6
    rows, cols = _ink_rows_cols(gray)
    assert cols[-1] + 1 - cols[0] > 0.8 * 1000
    assert rows[-1] + 1 - rows[0] <= 0.8 * 300
    # Centred on the ink, within a pixel, both ways.
    assert abs(cols[0] - (1000 - 1 - cols[-1])) <= 1
    assert abs(rows[0] - (300 - 1 - rows[-1])) <= 1


def test_render_is_deterministic():
    a = render_text("OVERFIT")
    b = render_text("OVERFIT")
    assert np.array_equal(a, b)


def test_multiline_text_has_two_ink_bands():
    gray = render_text("OVER\nFIT", 400, 300)
    rows, cols = _ink_rows_cols(gray)
    assert _runs(rows) == 2
    # Both lines are centred: the narrower second line sits inside the first's columns.
    first = binarize(gray[: rows[0] + (rows[-1] - rows[0]) // 2]) == 0
    second = binarize(gray[rows[0] + (rows[-1] - rows[0]) // 2 :]) == 0
    c1, c2 = np.flatnonzero(first.any(axis=0)), np.flatnonzero(second.any(axis=0))
    assert c1[0] < c2[0] and c2[-1] < c1[-1]
    # PIL centres lines by advance width, not ink, so the centres may differ by ~1 %.
    assert abs((c1[0] + c1[-1]) / 2 - (c2[0] + c2[-1]) / 2) <= 0.01 * 400


def test_explicit_font_size_is_used_and_may_clip():
    small = render_text("OVERFIT", 1000, 300, font_size=20)
    rows, cols = _ink_rows_cols(small)
    assert rows[-1] - rows[0] < 20 and cols[-1] - cols[0] < 200
    big = render_text("OVERFIT", 200, 50, font_size=300)
    assert big.shape == (50, 200)
    assert binarize(big)[:, 0].min() == 0 or binarize(big)[0, :].min() == 0  # ink reaches the border


def test_absurd_font_size_is_a_target_error():
    with pytest.raises(TargetError, match=r"font size 20000 is too large to render on a 1000 x 300 canvas"):
        render_text("OVERFIT", 1000, 300, font_size=20000)


@pytest.mark.parametrize("text", ["", "   ", " \n\t"])
def test_empty_text_is_refused(text):
    with pytest.raises(TargetError, match=r"^text is empty; "):
        render_text(text)


def test_binarize_threshold_is_above_128():
    gray = np.array([[0, 128, 129, 255]], dtype=np.uint8)
    labels = binarize(gray)
    assert labels.dtype == np.uint8
    assert labels.tolist() == [[0, 0, 1, 1]]


# -- pixel modes -------------------------------------------------------------------


def _image(mode: str, pixels: list, size=(2, 2)) -> Image.Image:
    img = Image.new(mode, size)
    for i, p in enumerate(pixels):
        img.putpixel((i % size[0], i // size[0]), p)
    return img


def _palette_image(transparent: bool) -> Image.Image:
    img = Image.new("P", (2, 2))
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])  # black, red, green, blue
    img.putdata([0, 1, 2, 3])
    if transparent:
        img.info["transparency"] = 0
    return img


# (name, image builder, file suffix, expected gray). Expected values are hand-computed
# luma (299 R + 587 G + 114 B) / 1000, rounded: red 76, green 150, blue 29, cyan 179.
MODE_CASES = [
    ("1", lambda: _image("1", [0, 1, 1, 0]), ".png", [[0, 255], [255, 0]]),
    ("L", lambda: _image("L", [0, 128, 129, 255]), ".png", [[0, 128], [129, 255]]),
    ("P", lambda: _palette_image(False), ".png", [[0, 76], [150, 29]]),
    ("P+transparency", lambda: _palette_image(True), ".png", [[255, 76], [150, 29]]),
    ("LA", lambda: _image("LA", [(0, 0), (0, 255), (200, 255), (200, 0)]), ".png", [[255, 0], [200, 255]]),
    ("RGB", lambda: _image("RGB", [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]), ".png", [[76, 150], [29, 18]]),
    (
        "RGBA",
        lambda: _image("RGBA", [(0, 0, 0, 0), (255, 0, 0, 255), (0, 0, 0, 255), (255, 255, 255, 0)]),
        ".png",
        [[255, 76], [0, 255]],
    ),
    ("CMYK", lambda: _image("CMYK", [(0, 0, 0, 0), (0, 0, 0, 255), (255, 0, 0, 0), (0, 0, 0, 0)]), ".tif", [[255, 0], [179, 255]]),
    # 16-bit: v / 257 rounded, not clipped at 255 as PIL's convert("L") would.
    ("I;16", lambda: Image.fromarray(np.array([[0, 65535], [128 * 257, 1000]], dtype=np.uint16)), ".png", [[0, 255], [128, 4]]),
    ("I", lambda: Image.fromarray(np.array([[0, 65535], [200 * 257, 129 * 257]], dtype=np.int32)), ".tif", [[0, 255], [200, 129]]),
    ("F in [0, 1]", lambda: Image.fromarray(np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32)), ".tif", [[0, 255], [128, 64]]),
    ("F in [0, 255]", lambda: Image.fromarray(np.array([[0.0, 200.4], [255.0, 300.0]], dtype=np.float32)), ".tif", [[0, 200], [255, 255]]),
]


@pytest.mark.parametrize("name, build, suffix, expected", MODE_CASES, ids=[c[0] for c in MODE_CASES])
def test_every_mode_becomes_luma_with_transparency_as_white(tmp_path, name, build, suffix, expected):
    img = build()
    path = tmp_path / f"pic{suffix}"
    img.save(path)
    assert Image.open(path).mode == name.split(" ")[0].split("+")[0]  # the file really has that mode
    gray = load_image(path)
    assert gray.dtype == np.uint8
    assert gray.shape == (2, 2)
    assert gray.tolist() == expected


# -- file formats ------------------------------------------------------------------


def _pattern() -> np.ndarray:
    """32 x 48 grayscale with 8-pixel blocks (JPEG-friendly): black, white and gray 100."""
    a = np.full((32, 48), 255, dtype=np.uint8)
    a[:16, :16] = 0
    a[16:, 24:40] = 100
    return a


@pytest.mark.parametrize(
    "suffix, options",
    [(".png", {}), (".bmp", {}), (".gif", {}), (".webp", {"lossless": True}), (".tif", {}), (".tiff", {})],
)
def test_lossless_formats_round_trip_exactly(tmp_path, suffix, options):
    path = tmp_path / f"pic{suffix}"
    Image.fromarray(_pattern()).save(path, **options)
    gray = load_image(path)
    assert gray.shape == (32, 48)
    assert np.array_equal(gray, _pattern())


def test_jpeg_round_trips_within_tolerance(tmp_path):
    path = tmp_path / "pic.jpg"
    Image.fromarray(_pattern()).convert("RGB").save(path, quality=95)
    gray = load_image(path)
    assert gray.shape == (32, 48)
    assert np.abs(gray.astype(int) - _pattern()).max() <= 12
    assert np.array_equal(binarize(gray), binarize(_pattern()))


def test_gif_uses_the_first_frame(tmp_path):
    first = Image.fromarray(_pattern())
    second = Image.new("L", (48, 32), 255)
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100)
    assert Image.open(path).n_frames == 2
    assert np.array_equal(load_image(path), _pattern())


def test_exif_orientation_is_applied(tmp_path):
    a = np.full((2, 3), 255, dtype=np.uint8)
    a[0, 0] = 0  # stored top-left
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.png"
    img.save(path, exif=exif)
    gray = load_image(path)
    assert gray.shape == (3, 2)
    assert np.array_equal(gray, np.rot90(a, k=-1))  # displayed top-right
    assert gray[0, 1] == 0


# -- bad inputs --------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(TargetError, match=r"^picture not found: .*nope\.png$"):
        load_image(path)


def test_directory(tmp_path):
    with pytest.raises(TargetError, match=r"^not a file but a directory: "):
        load_image(tmp_path)


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n")
    with pytest.raises(TargetError, match=r"^cannot read picture .*notes\.png: not an image file \(or an unsupported format\)$"):
        load_image(path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)  # incompressible
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TargetError, match=r"^picture .*cut\.png is truncated or corrupt: \S") as info:
        load_image(path)
    assert "\n" not in str(info.value)


def test_too_small(tmp_path):
    path = tmp_path / "thin.png"
    Image.new("L", (1, 5), 0).save(path)
    with pytest.raises(TargetError, match=r"^picture .*thin\.png is 1 x 5 pixels; at least 2 x 2 is needed$"):
        load_image(path)


def test_too_many_pixels_from_a_small_file(tmp_path):
    path = tmp_path / "ten.png"
    Image.new("L", (10, 10), 0).save(path)
    with pytest.raises(TargetError, match=r"is 100 pixels \(10 x 10\), above the limit of 99$") as info:
        load_image(path, max_pixels=99)
    assert info.value.field == "data.max_pixels"
    assert load_image(path, max_pixels=100).shape == (10, 10)


def _png_with_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height and whose pixel data is garbage."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"garbage") + chunk(b"IEND", b"")


def test_huge_header_is_refused_before_decoding(tmp_path):
    # 60M pixels: above our default limit, below PIL's bomb error; 10^10: above both.
    # Decoding the garbage data would say "corrupt", so our message proves no decoding.
    path = tmp_path / "huge.png"
    path.write_bytes(_png_with_header_only(8000, 7500))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(
            TargetError,
            match=r"^picture .*huge\.png is 60000000 pixels \(8000 x 7500\), above the limit of 50000000$",
        ):
            load_image(path)
    path.write_bytes(_png_with_header_only(100_000, 100_000))
    limit = 2 * Image.MAX_IMAGE_PIXELS  # PIL refuses it while reading the header
    with pytest.raises(TargetError, match=rf"huge\.png is more than {limit} pixels, above the limit of 50000000$") as info:
        load_image(path)
    assert info.value.field == "data.max_pixels"


def test_pils_pixel_limit_stays_in_force_above_ours_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # PIL warns above 10 pixels and refuses above 20
    small, large = tmp_path / "four.png", tmp_path / "eight.png"
    Image.new("L", (4, 4), 0).save(small)
    Image.new("L", (8, 8), 0).save(large)
    with pytest.warns(Image.DecompressionBombWarning):
        assert load_image(small, max_pixels=64).shape == (4, 4)  # within ours, PIL only warns
    with pytest.raises(TargetError, match=r"eight\.png is more than 20 pixels, the most PIL decodes") as info:
        load_image(large, max_pixels=64)
    assert info.value.field is None  # raising data.max_pixels would not help
    assert Image.MAX_IMAGE_PIXELS == 10


def test_decoding_never_changes_pils_process_wide_pixel_limit(tmp_path, monkeypatch):
    """Other threads decode pictures too: PIL's limit must guard them all the time, so nothing may write it."""
    import threading
    import types

    writes: list[object] = []

    class Watched(types.ModuleType):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "MAX_IMAGE_PIXELS":
                writes.append(value)
            super().__setattr__(name, value)

    path = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 800), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "__class__", Watched)
    seen: list[object] = []
    done = threading.Event()

    def decode() -> None:
        try:
            for _ in range(5):
                load_image(path, max_pixels=10**8)
        finally:
            done.set()

    worker = threading.Thread(target=decode)
    worker.start()
    while not done.is_set():  # what another thread sees meanwhile
        seen.append(Image.MAX_IMAGE_PIXELS)
    worker.join()
    assert writes == []
    assert set(seen) == {Image.MAX_IMAGE_PIXELS} and Image.MAX_IMAGE_PIXELS is not None


# -- load_target -------------------------------------------------------------------


def test_load_target_from_text():
    target = load_target(DataConfig(text="OVERFIT", width=200, height=60))
    assert isinstance(target, Target)
    assert target.source == 'text "OVERFIT"'
    assert (target.height, target.width, target.num_pixels) == (60, 200, 12000)
    assert target.labels.shape == target.gray.shape == (60, 200)
    assert target.labels.dtype == np.uint8
    assert np.array_equal(target.labels, binarize(target.gray))
    assert 0.4 < target.background_fraction < 0.85
    assert target.majority_rate == pytest.approx(target.background_fraction)


def test_load_target_from_image_keeps_top_row_on_top(tmp_path):
    a = np.full((4, 5), 255, dtype=np.uint8)
    a[0, :] = 0  # top row ink: 5 of 20 pixels
    path = tmp_path / "bar.png"
    Image.fromarray(a).save(path)
    target = load_target(DataConfig(image=str(path)))
    assert target.source == str(path)
    assert target.labels.tolist()[0] == [0, 0, 0, 0, 0]
    assert target.labels[1:].min() == 1
    assert target.background_fraction == pytest.approx(0.75)
    assert target.majority_rate == pytest.approx(0.75)


@pytest.mark.parametrize("value, which", [(255, "background"), (0, "ink")])
def test_single_class_picture_warns(tmp_path, value, which):
    path = tmp_path / "plain.png"
    Image.new("L", (4, 3), value).save(path)
    with pytest.warns(NothingToLearnWarning, match=rf"plain\.png is all {which} .*: nothing to learn"):
        target = load_target(DataConfig(image=str(path)))
    assert target.majority_rate == 1.0
