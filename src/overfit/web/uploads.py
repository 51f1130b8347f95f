"""Pictures uploaded from the browser, stored by content under runs_dir/.uploads/.

An upload is refused unless it is a real picture: at most `max_bytes` of data
(counted while it arrives, so an endless body is cut off early), a format PIL
reads, not truncated, and at most `max_pixels` pixels by its header (a
decompression bomb of a few kilobytes claiming 100000 x 100000 is refused before a
pixel is decoded; `targets.load_image` does those checks). An accepted picture is
stored as <sha256>.<ext>, and the browser only ever gets that hash as the upload's
id: it never names or learns a file-system path.

The folder is bounded too (`limits`): so many stored pictures, so many bytes of them,
and so many uploads arriving at once (each writes a temporary file while it arrives);
over any of them an upload is refused with 429. A temporary file left by a lab that was
killed mid-upload is removed when a lab next opens the folder, once it is old enough
that no upload of a lab still running can own it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import TargetError
from ..limits import LIMITS, most
from ..targets import load_image
from .errors import LabError, lab_error

UPLOAD_DIR = ".uploads"
MAX_UPLOAD_BYTES = most("upload_bytes")
# Decoded-pixel cap for the lab (uploads and text canvases): 4096 x 4096. Far below the CLI's
# 50 megapixels, because a browser tab and a shared server should not be tied up by one picture.
MAX_LAB_PIXELS = most("upload_pixels")
# Temporary files of uploads as they arrive, and the age after which one is stale (its upload
# ended with its lab: no upload of 20 MB takes an hour).
INCOMING_PREFIX, INCOMING_SUFFIX = ".incoming-", ".tmp"
STALE_SECONDS = 3600
UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")  # the page checks it too: fullmatch it (`$` passes "x\n")
# File extension by the format PIL detected (never by the name the browser sent).
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "WEBP": "webp", "TIFF": "tif"}
FORMAT_NAMES = ("PNG", "JPEG", "GIF", "BMP", "WebP", "TIFF")  # the same, as people write them


@dataclass(frozen=True)
class Upload:
    id: str
    """sha256 of the file's bytes, hex."""
    path: Path
    width: int
    height: int


class UploadStore:
    """The uploads folder of one runs folder."""

    def __init__(self, runs_dir: Path, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_LAB_PIXELS,
                 max_count: int = most("uploads"), max_total: int = most("upload_store_bytes"),
                 at_once: int = most("uploads_at_once")) -> None:
        self.dir = runs_dir / UPLOAD_DIR
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_count, self.max_total, self.at_once = max_count, max_total, at_once
        self._arriving = 0  # uploads being received now; changed on the event loop only

    def remove_stale(self, now: float | None = None) -> int:
        """Remove temporary files of uploads that ended with their lab (older than STALE_SECONDS); how many."""
        now = time.time() if now is None else now
        removed = 0
        if not self.dir.is_dir() or self.dir.is_symlink():
            return 0
        for path in self.dir.glob(f"{INCOMING_PREFIX}*{INCOMING_SUFFIX}"):
            with contextlib.suppress(OSError):
                if now - path.lstat().st_mtime > STALE_SECONDS:
                    path.unlink()
                    removed += 1
        return removed

    def _stored(self) -> tuple[int, int]:
        """(pictures stored, their bytes)."""
        count = size = 0
        for entry in os.scandir(self.dir):
            if UPLOAD_ID.fullmatch(entry.name.split(".", 1)[0]) and entry.is_file(follow_symlinks=False):
                count, size = count + 1, size + entry.stat(follow_symlinks=False).st_size
        return count, size

    def _full(self, adding: int) -> LabError | None:
        """The refusal when one more picture of `adding` bytes would be over the folder's limits, else None."""
        count, size = self._stored()
        for name, value, most_ in (("uploads", count + 1, self.max_count), ("upload_store_bytes", size + adding, self.max_total)):
            if value > most_:
                limit = LIMITS[name]
                return LabError(429, f"{value:,} {limit.unit}: more than the lab's limit of {most_:,} ({limit.why}); "
                                     "remove pictures no run uses from the runs folder's .uploads", field=limit.field)
        return None

    async def save(self, chunks: AsyncIterator[bytes], declared_length: int | None = None) -> Upload:
        """Store the picture arriving as `chunks`; LabError 413/415/422/429 for every refusal."""
        if declared_length is not None and declared_length > self.max_bytes:
            raise self._too_big()
        if self._arriving >= self.at_once:
            limit = LIMITS["uploads_at_once"]
            raise LabError(429, f"{self.at_once} uploads are arriving already, the lab's limit ({limit.why}); "
                                "try again when one has finished", field=limit.field)
        self.dir.mkdir(parents=True, exist_ok=True)
        # The folder's limits are checked once the picture is known: the same picture again adds no file.
        self._arriving += 1
        try:
            return await self._receive(chunks)
        finally:
            self._arriving -= 1

    async def _receive(self, chunks: AsyncIterator[bytes]) -> Upload:
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.dir, prefix=INCOMING_PREFIX, suffix=INCOMING_SUFFIX)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise self._too_big()
                    digest.update(chunk)
                    f.write(chunk)
            if size == 0:
                raise LabError(415, "the upload is empty; choose a picture file", field="upload")
            fmt, width, height = await asyncio.to_thread(self._check, tmp)  # decoding 16 megapixels takes a while: not on the event loop
            upload_id = digest.hexdigest()
            existing = self._find(upload_id)
            if existing is not None:
                path = existing  # same bytes uploaded before: content-addressed, keep one copy
            elif (full := self._full(size)) is not None:
                raise full
            else:
                path = self.dir / f"{upload_id}.{EXTENSIONS.get(fmt, fmt.lower() or 'img')}"
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            return Upload(upload_id, path, width, height)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _too_big(self) -> LabError:
        return LabError(413, f"the picture is larger than the limit of {self.max_bytes // (1024 * 1024)} MB", field="upload")

    def _check(self, path: Path) -> tuple[str, int, int]:
        """(format, width, height) of the picture, or LabError: 415 for what is no picture at all, else load_image's refusal.

        `load_image` checks the size from the header before decoding, under PIL's own
        limit as the process has it (never switched off, so other threads stay guarded).
        """
        try:
            picture = load_image(path, self.max_pixels)
        except TargetError as e:
            if not _recognised(path):
                raise LabError(415, "the uploaded file is not an image file (or an unsupported format)", field="upload") from None
            raise lab_error(e, upload=os.fsdecode(path)) from None
        with Image.open(path) as img:  # the header again, for the format's name
            fmt = img.format or ""
        height, width = picture.shape[:2]  # as displayed (EXIF orientation applied)
        return fmt, width, height

    def _find(self, upload_id: str) -> Path | None:
        for path in self.dir.glob(f"{upload_id}.*"):
            if path.is_file() and not path.is_symlink():
                return path
        return None

    def path(self, upload_id: object) -> Path:
        """The stored file of `upload_id`; LabError 422 (field 'upload') for a malformed or unknown id."""
        if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
            raise LabError(422, "not an upload id (the sha256 the server returned for an upload)", field="upload")
        path = self._find(upload_id)
        if path is None:
            raise LabError(422, "no such upload on this server; upload the picture again", field="upload")
        return path

    def id_of(self, image: str | None) -> str | None:
        """The upload id of a config's data.image if it is one of our uploads, else None."""
        if not image:
            return None
        p = Path(image)
        if p.parent.resolve() == self.dir.resolve() and UPLOAD_ID.fullmatch(p.stem):
            return p.stem
        return None


def _recognised(path: Path) -> bool:
    """Whether PIL knows the file's format at all, from its first bytes (nothing is decoded)."""
    try:
        with Image.open(path):
            return True
    except UnidentifiedImageError:
        return False
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError):  # a bomb, a broken header: a picture, not one to fit
        return True
