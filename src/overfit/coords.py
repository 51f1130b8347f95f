"""The coordinate convention, owned by this one file.

A coordinate is a pair (y, x) in pixel units, float:
- x runs left to right, 0 at the centre of the leftmost column, W - 1 at the rightmost;
- y runs bottom to top, 0 at the centre of the BOTTOM row, H - 1 at the top row
  (the original experiment's convention: its scatter plots have y pointing up);
- a coordinate belongs to the nearest pixel centre: (y, x) is the pixel at
  row H - 1 - round(y), column round(x) of the picture as stored (row 0 on top).

Arrays of coordinates are (N, 2) with y first. Everything that turns pixels into
coordinates or coordinates into pixels calls a function here.
"""

from __future__ import annotations

import torch


def pixel_index(yx: torch.Tensor, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the picture as stored for each coordinate: (N, 2) float -> two (N,) long."""
    nearest = torch.round(yx).long()
    return height - 1 - nearest[:, 0], nearest[:, 1]


def gather(picture: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """picture[rows, cols] for a picture (H, W, ...): one `index_select` of flat indices.

    The same values as advanced indexing, which on a CPU turns parallel above a few thousand
    indices and then costs 10-50x more (measured: 8,192 lookups 322 us against 33 us).
    """
    flat = picture.reshape(picture.shape[0] * picture.shape[1], *picture.shape[2:])
    return flat.index_select(0, rows * picture.shape[1] + cols)


def label_at(picture: torch.Tensor, yx: torch.Tensor) -> torch.Tensor:
    """Value of the nearest pixel of `picture` (H, W), row 0 on top, at each coordinate (N, 2)."""
    rows, cols = pixel_index(yx, picture.shape[0])
    return gather(picture, rows, cols)


def bilinear_at(picture: torch.Tensor, yx: torch.Tensor) -> torch.Tensor:
    """Values of `picture` (H, W, C), row 0 on top, bilinearly interpolated at coordinates (N, 2): (N, C).

    Pixel centres sit at integer coordinates, so a coordinate on a centre gives that
    pixel exactly and one between centres mixes its four neighbours (tiny-cuda-nn's
    image sampling). Coordinates are clamped to [0, H - 1] x [0, W - 1].
    """
    height, width = picture.shape[0], picture.shape[1]
    row = (height - 1 - yx[:, 0]).clamp(0, height - 1)
    col = yx[:, 1].clamp(0, width - 1)
    r0 = row.floor().clamp(max=height - 2).long()
    c0 = col.floor().clamp(max=width - 2).long()
    fr, fc = (row - r0)[:, None], (col - c0)[:, None]
    top = gather(picture, r0, c0) * (1 - fc) + gather(picture, r0, c0 + 1) * fc
    bottom = gather(picture, r0 + 1, c0) * (1 - fc) + gather(picture, r0 + 1, c0 + 1) * fc
    return top * (1 - fr) + bottom * fr


def pixel_grid(height: int, width: int, device: torch.device | str = "cpu", start: int = 0, end: int | None = None) -> torch.Tensor:
    """Coordinates of pixel centres in storage order, (n, 2) float32.

    Row-major from the top-left pixel, so values predicted for the whole grid
    reshape to an upright (H, W) picture. `start` and `end` select flat pixel
    indices [start, end) of that order, so a large picture can be visited in
    chunks without ever holding all its coordinates.
    """
    return region_grid(-0.5, height - 0.5, -0.5, width - 0.5, height, width, start, end, device)


def region_grid(y0: float, y1: float, x0: float, x1: float, out_h: int, out_w: int, start: int = 0, end: int | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Coordinates (n, 2) of the centres of an out_h x out_w grid of output pixels covering a region, row-major, row 0 on top.

    The region is [y0, y1] x [x0, x1] in this module's coordinates (y up). Output row 0 is
    the top of the region (the largest y). `start` and `end` select flat indices as in
    `pixel_grid`. The region (-0.5, H - 0.5, -0.5, W - 0.5) at out_h x out_w = H x W gives
    exactly the pixel centres of `pixel_grid`.
    """
    end = out_h * out_w if end is None else min(end, out_h * out_w)
    index = torch.arange(start, end, device=device)
    rows, cols = index // out_w, index % out_w
    # float64 where the device has it, so centres stay exact deep into a zoom (MPS has no float64).
    dtype = torch.float32 if index.device.type == "mps" else torch.float64
    y = y1 - (rows.to(dtype) + 0.5) * ((y1 - y0) / out_h)
    x = x0 + (cols.to(dtype) + 0.5) * ((x1 - x0) / out_w)
    return torch.stack([y, x], dim=1).float()


def input_affine(height: int, width: int, r: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, offset), each (2,), mapping (y, x) to r * ((y, x) / (H // 2, W // 2) - 1).

    This is the original experiment's normalisation for r = 1, which maps
    [0, H - 1] to about [-1, 1]; r = None is the identity (raw pixel units).
    """
    if r is None:
        return torch.ones(2), torch.zeros(2)
    half = torch.tensor([height // 2, width // 2], dtype=torch.float32)
    return r / half, torch.full((2,), -float(r))
