"""`grid`: a multiresolution grid of trainable features, bilinearly interpolated (Muller et al. 2022, instant-NGP).

Dense where a level fits in 2^T entries, spatially hashed where it does not, in plain
PyTorch so it runs on any device.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import EncodingConfig

# instant-NGP's spatial hash (Teschner et al. 2003): xor of coordinate * prime, mod 2^T.
# The first prime is 1 so that neighbouring cells along x stay coherent in memory.
HASH_PRIMES = (1, 2654435761)


def grid_resolutions(levels: int, base: int, per_level_scale: float | None, height: int, width: int) -> list[tuple[int, int]]:
    """Cells (along y, along x) of each level, coarsest first.

    The longer side of the picture gets `base * scale^l` cells at level l; the other
    side proportionally fewer, so cells stay square in pixels. With no scale given,
    the finest level has one cell per pixel: its vertices then sit on pixel centres
    (the input scaling maps pixel y to 2y/H - 1 in [-1, 1), which the grid maps to
    [0, 1)), so the finest level can store the picture exactly.
    """
    sizes = (max(2, 2 * (height // 2)), max(2, 2 * (width // 2)))
    longest = max(sizes)
    if per_level_scale is None:
        per_level_scale = (longest / base) ** (1.0 / (levels - 1)) if levels > 1 and longest > base else 1.0
    out = []
    for level in range(levels):
        cells = base * per_level_scale**level
        out.append(tuple(max(1, round(cells * s / longest)) for s in sizes))
    return out  # type: ignore[return-value]


class GridEncoding(nn.Module):
    """Multiresolution grid: (N, 2) in [-r, r] -> (N, levels * features_per_level).

    Level l has (cy + 1) x (cx + 1) vertices, each holding F trainable features; a
    point's feature at that level is the bilinear interpolation of the four vertices
    around it, and the levels' features are concatenated (finest last).

    Storage follows instant-NGP: a level with at most 2^T vertices is a dense table,
    kept as an (1, F, cy + 1, cx + 1) picture so that `F.grid_sample` (a fused,
    vectorised bilinear gather with a fast backward) does the lookup; a larger level
    is a table of 2^T rows indexed by the spatial hash (ix * 1 xor iy * 2654435761)
    mod 2^T, looked up with a gather of the four corners and their weights.
    """

    def __init__(self, resolutions: list[tuple[int, int]], features_per_level: int, log2_hashmap_size: int, input_range: float) -> None:
        super().__init__()
        self.resolutions = [tuple(r) for r in resolutions]
        self.features_per_level = features_per_level
        self.input_range = float(input_range)
        self.table_size = 1 << log2_hashmap_size
        self.is_hashed = [(cy + 1) * (cx + 1) > self.table_size for cy, cx in self.resolutions]
        # instant-NGP initialises every entry in U(-1e-4, 1e-4).
        self.dense = nn.ParameterList([
            nn.Parameter(torch.empty(1, features_per_level, cy + 1, cx + 1).uniform_(-1e-4, 1e-4))
            for (cy, cx), hashed in zip(self.resolutions, self.is_hashed) if not hashed
        ])
        n_hashed = sum(self.is_hashed)
        self.hashed = nn.Parameter(torch.empty(n_hashed, self.table_size, features_per_level).uniform_(-1e-4, 1e-4)) if n_hashed else None
        self.out_features = len(self.resolutions) * features_per_level

    @property
    def levels(self) -> int:
        return len(self.resolutions)

    def unit(self, v: torch.Tensor) -> torch.Tensor:
        """Scaled coordinates (N, 2) in [-r, r] -> grid coordinates in [0, 1]; points outside clamp to the edge."""
        return ((v / self.input_range + 1.0) * 0.5).clamp(0.0, 1.0)

    def corners(self, u: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertex (iy, ix) (N, 4, 2) of the four corners around each point u (N, 2) in [0, 1], and their bilinear weights (N, 4)."""
        cells = torch.tensor(self.resolutions[level], dtype=u.dtype, device=u.device)
        pos = u * cells  # (N, 2) in cell units
        lo = torch.minimum(pos.floor(), cells - 1).clamp_min(0)
        frac = pos - lo
        offsets = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], device=u.device)
        vertex = lo.long()[:, None, :] + offsets  # (N, 4, 2)
        fy, fx = frac[:, 0:1], frac[:, 1:2]
        weights = torch.cat([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], dim=1)
        return vertex, weights

    def hash_index(self, vertex: torch.Tensor) -> torch.Tensor:
        """instant-NGP's spatial hash of vertices (..., 2) as (iy, ix): rows in [0, 2^T)."""
        return ((vertex[..., 1] * HASH_PRIMES[0]) ^ (vertex[..., 0] * HASH_PRIMES[1])) & (self.table_size - 1)

    def gather_level(self, table: torch.Tensor, u: torch.Tensor, level: int, hashed: bool) -> torch.Tensor:
        """Bilinear lookup by explicit corner gathers: table (rows, F), u (N, 2) -> (N, F)."""
        vertex, weights = self.corners(u, level)
        if hashed:
            rows = self.hash_index(vertex)
        else:
            rows = vertex[..., 0] * (self.resolutions[level][1] + 1) + vertex[..., 1]
        corner_features = table.index_select(0, rows.reshape(-1)).view(*rows.shape, -1)  # (N, 4, F)
        return (corner_features * weights[..., None]).sum(dim=1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        u = self.unit(v)
        # grid_sample takes (x, y) in [-1, 1]; align_corners=True puts -1 and 1 on the edge vertices.
        grid = (u.flip(1) * 2.0 - 1.0)[None, :, None, :]  # (1, N, 1, 2)
        features = []
        dense, hashed = iter(self.dense), 0
        for level, is_hashed in enumerate(self.is_hashed):
            if is_hashed:
                assert self.hashed is not None
                features.append(self.gather_level(self.hashed[hashed], u, level, hashed=True))
                hashed += 1
            else:
                table = next(dense)
                out = F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)  # (1, F, N, 1)
                features.append(out[0, :, :, 0].t())
        return torch.cat(features, dim=1)


# A finest level with more than this many cells per pixel only adds empty cells.
MAX_CELLS_PER_PIXEL = 4


def build(cfg: EncodingConfig, input_range: float | None, height: int, width: int) -> nn.Module:
    if input_range is None:
        raise ConfigError("the grid encoding needs scaled inputs; set a number", field="model.input_range")
    resolutions = grid_resolutions(cfg.levels, cfg.base_resolution, cfg.per_level_scale, height, width)
    finest = max(resolutions[-1])
    if finest > MAX_CELLS_PER_PIXEL * max(height, width):
        raise ConfigError(
            f"the finest grid level has {finest} cells across a {max(height, width)}-pixel side, "
            f"more than {MAX_CELLS_PER_PIXEL}x the picture; lower encoding.per_level_scale or encoding.levels, or leave the scale as none",
            field="encoding.per_level_scale",
        )
    return GridEncoding(resolutions, cfg.features_per_level, cfg.log2_hashmap_size, input_range)


def level_tables(enc: GridEncoding) -> list[tuple[np.ndarray, bool]]:
    """Each level's feature table (rows, features) as float32 numbers and whether it is hashed, coarsest first.

    A dense level's row for vertex (iy, ix) is iy * (cx + 1) + ix; a hashed level's is
    the spatial hash, as in `GridEncoding.gather_level`.
    """
    features = enc.features_per_level
    dense, hashed, out = iter(enc.dense), 0, []
    for is_hashed in enc.is_hashed:
        if is_hashed:
            assert enc.hashed is not None
            out.append((enc.hashed[hashed].detach().float().cpu().numpy(), True))
            hashed += 1
        else:
            table = next(dense).detach()[0]  # (features, cy + 1, cx + 1)
            out.append((table.permute(1, 2, 0).reshape(-1, features).float().cpu().numpy(), False))
    return out


def glsl(enc: GridEncoding, packer: Any) -> tuple[list[str], int, np.ndarray, dict[str, Any], int]:
    """The WebGL viewer's form of this encoding, its constants laid out through `packer` (an `export.webgl.Packer`).

    Per level, four table rows (dense or hashed) and bilinear weights.
    Returns (GLSL lines filling a[] from v, vec4s used, each feature's place in a[], table texture, MACs per pixel).
    """
    features = enc.features_per_level
    levels = level_tables(enc)
    offsets = np.cumsum([0] + [t.shape[0] for t, _ in levels])
    texture, per_row = packer.table(np.concatenate([t for t, _ in levels]))  # rows of every level, coarsest first
    mask = enc.table_size - 1
    n4 = packer.vec4s(enc.out_features)
    code = [f"for (int k = 0; k < {n4}; k++) a[k] = vec4(0.0);",
            # (N, 2) in [-r, r] -> [0, 1] per axis; outside the picture clamps to its edge, as `unit` does.
            f"vec2 u = clamp((v / {packer.literal(enc.input_range)} + 1.0) * 0.5, 0.0, 1.0);"]
    for level, (cy, cx) in enumerate(enc.resolutions):
        off, stride, hashed = int(offsets[level]), cx + 1, levels[level][1]
        code += ["{",
                 f"  vec2 cells = vec2({packer.literal(cy)}, {packer.literal(cx)});",
                 "  vec2 pos = u * cells;",
                 "  vec2 lo = max(min(floor(pos), cells - 1.0), 0.0);",
                 "  vec2 f = pos - lo;",
                 "  ivec2 i = ivec2(lo);"]
        if hashed:
            # instant-NGP's hash in uint32: the low T bits of the int64 product and xor are the same.
            code += [f"  uint x0 = uint(i.y) * {HASH_PRIMES[0]}u, x1 = uint(i.y + 1) * {HASH_PRIMES[0]}u;",
                     f"  uint y0 = uint(i.x) * {HASH_PRIMES[1]}u, y1 = uint(i.x + 1) * {HASH_PRIMES[1]}u;",
                     f"  int r00 = {off} + int((x0 ^ y0) & {mask}u), r01 = {off} + int((x1 ^ y0) & {mask}u);",
                     f"  int r10 = {off} + int((x0 ^ y1) & {mask}u), r11 = {off} + int((x1 ^ y1) & {mask}u);"]
        else:
            code.append(f"  int r00 = {off} + i.x * {stride} + i.y, r01 = r00 + 1, r10 = r00 + {stride}, r11 = r10 + 1;")
        code.append("  vec4 w = vec4((1.0 - f.x) * (1.0 - f.y), (1.0 - f.x) * f.y, f.x * (1.0 - f.y), f.x * f.y);")
        for t in range(per_row):
            code.append(f"  vec4 e{t} = w.x * tab(r00 * {per_row} + {t}) + w.y * tab(r01 * {per_row} + {t})"
                        f" + w.z * tab(r10 * {per_row} + {t}) + w.w * tab(r11 * {per_row} + {t});")
        for fi in range(features):
            p = level * features + fi
            code.append(f"  a[{p // 4}].{'xyzw'[p % 4]} = e{fi // 4}.{'xyzw'[fi % 4]};")
        code.append("}")
    return code, n4, np.arange(enc.out_features), texture, enc.levels * 4 * features
