"""Tests of pictures uploaded to the lab (`web.uploads`): stored by content, refused unless they are real pictures."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import time
import zlib

import numpy as np
from PIL import Image
from helpers import run_async
from web_client import TINY, create, lab, make_lab, png_bytes, png_chunk, refusal  # noqa: F401  (fixtures)

from overfit.web.errors import LabError
from overfit.web.uploads import STALE_SECONDS, UPLOAD_DIR


def picture() -> np.ndarray:
    img = np.full((24, 40), 255, np.uint8)
    img[6:18, 8:32] = 0
    return img


def test_an_uploaded_picture_is_stored_by_content_and_becomes_the_target(lab, tmp_path):
    data = png_bytes(picture())
    r = lab.post("/api/uploads", content=data, headers={"content-type": "image/png"})
    assert r.status_code == 201, r.text
    up = r.json()
    assert re.fullmatch(r"[0-9a-f]{64}", up["id"]) and (up["width"], up["height"]) == (40, 24)
    stored = tmp_path / "runs" / UPLOAD_DIR / f"{up['id']}.png"
    assert stored.read_bytes() == data
    assert lab.post("/api/uploads", content=data).json()["id"] == up["id"]  # same bytes, same id
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary files left

    with Image.open(io.BytesIO(lab.get(f"/api/target.png?upload={up['id']}").content)) as img:
        assert img.size == (40, 24)
    run = create(lab, {"schedule": TINY["schedule"], "model": TINY["model"]}, upload=up["id"])
    assert run["upload"] == up["id"] and run["config"]["data"]["image"] is None  # no path reaches the page
    assert (run["height"], run["width"]) == (24, 40)
    saved = json.loads((tmp_path / "runs" / run["id"] / "config.json").read_text())
    assert saved["data"]["image"] == str(stored)


def test_uploads_that_are_not_pictures_are_refused(lab, tmp_path):
    message = refusal(lab.post("/api/uploads", content=b"#!/bin/sh\necho hello\n"), 415, "upload")
    assert "not an image" in message
    refusal(lab.post("/api/uploads", content=b""), 415, "upload")
    truncated = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))[:-200]
    assert "truncated" in refusal(lab.post("/api/uploads", content=truncated), 422, "upload")
    assert not [p for p in (tmp_path / "runs" / UPLOAD_DIR).iterdir()]


def test_a_decompression_bomb_is_refused_from_its_header(lab):
    # A 100000 x 100000 PNG (10 gigapixels) in a few hundred bytes: one compressed row, repeated by nothing.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 100_001)) + png_chunk(b"IEND", b"")
    assert len(bomb) < 2000
    message = refusal(lab.post("/api/uploads", content=bomb), 422, "upload")
    # PIL itself refuses it while reading the header (its limit stays in force), before ours is asked.
    assert f"more than {2 * Image.MAX_IMAGE_PIXELS} pixels, above the limit of {4096 * 4096}" in message


def test_checking_an_upload_never_changes_pils_process_wide_pixel_limit(lab, monkeypatch):
    import types

    writes: list[object] = []

    class Watched(types.ModuleType):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "MAX_IMAGE_PIXELS":
                writes.append(value)
            super().__setattr__(name, value)

    monkeypatch.setattr(Image, "__class__", Watched)
    assert lab.post("/api/uploads", content=png_bytes(picture())).status_code == 201
    ihdr = struct.pack(">IIBBBBB", 5000, 5000, 8, 0, 0, 0, 0)  # over the lab's 4096 x 4096, under PIL's limit
    big = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"garbage") + png_chunk(b"IEND", b"")
    assert "25000000 pixels (5000 x 5000), above the limit of 16777216" in refusal(lab.post("/api/uploads", content=big), 422, "upload")
    assert writes == []


def test_an_upload_over_the_size_cap_is_refused(make_lab):
    lab = make_lab(upload_max_bytes=4000)
    big = png_bytes(np.random.default_rng(1).integers(0, 255, (100, 100), dtype=np.uint8))
    assert len(big) > 4000
    refusal(lab.post("/api/uploads", content=big), 413, "upload")

    def chunks():  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]
    refusal(lab.post("/api/uploads", content=chunks()), 413, "upload")


def test_an_upload_id_with_a_final_newline_is_refused(lab):
    up = lab.post("/api/uploads", content=png_bytes(picture()), headers={"content-type": "image/png"}).json()
    ok = lab.get("/api/target.png", params={"upload": up["id"]})
    assert ok.status_code == 200
    bad = lab.get("/api/target.png", params={"upload": up["id"] + "\n"})  # `$` matched before the newline
    assert bad.status_code == 422 and "not an upload id" in bad.text


def test_the_uploads_folder_is_capped_by_count_and_by_bytes(lab, tmp_path):
    store = lab.app.state.uploads
    rng = np.random.default_rng(1)
    first = png_bytes(rng.integers(0, 255, (16, 16), dtype=np.uint8))
    assert lab.post("/api/uploads", content=first).status_code == 201
    store.max_count = 1
    # Before, any number of distinct pictures was kept: a page uploading in a loop filled the disk.
    message = refusal(lab.post("/api/uploads", content=png_bytes(rng.integers(0, 255, (16, 16), dtype=np.uint8))), 429, "upload")
    assert message.startswith("2 stored uploads: more than the lab's limit of 1 (")
    assert lab.post("/api/uploads", content=first).status_code == 201  # the same picture again is no new file
    store.max_count, store.max_total = 10, len(first) + 100
    message = refusal(lab.post("/api/uploads", content=png_bytes(rng.integers(0, 255, (16, 16), dtype=np.uint8))), 429, "upload")
    assert "bytes of stored uploads: more than the lab's limit of" in message
    assert len(list((tmp_path / "runs" / UPLOAD_DIR).iterdir())) == 1  # nothing else kept, no temporary file left


def test_uploads_arriving_at_once_are_capped(tmp_path):
    import asyncio

    from overfit.web.uploads import UploadStore

    store = UploadStore(tmp_path, at_once=1)
    data = png_bytes(picture())

    async def main():
        release = asyncio.Event()

        async def slow():
            await release.wait()
            yield data

        async def quick():
            yield data

        first = asyncio.create_task(store.save(slow()))
        await asyncio.sleep(0)  # the first upload is arriving
        try:
            await store.save(quick())
        except LabError as e:
            refused = e
        release.set()
        return refused, await first, await store.save(quick())

    refused, first, after = run_async(main())
    assert refused.status == 429 and refused.field == "upload" and "1 uploads are arriving already" in refused.detail
    assert first.id == after.id  # the place is free again once it has arrived


def test_temporary_files_left_by_a_killed_lab_are_removed_when_a_lab_starts(make_lab, tmp_path):
    folder = tmp_path / "runs" / UPLOAD_DIR
    folder.mkdir(parents=True)
    stale, fresh = folder / ".incoming-abc.tmp", folder / ".incoming-def.tmp"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")
    os.utime(stale, (time.time() - 2 * STALE_SECONDS,) * 2)
    make_lab()
    # An old one is gone; a recent one may be another lab's upload on the same runs folder, arriving now.
    assert sorted(p.name for p in folder.iterdir()) == [fresh.name]
