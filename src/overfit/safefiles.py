"""Reading a run folder's files as untrusted input: never through a link, never a FIFO or a device, never unbounded.

A run folder may come from anywhere (copied, unpacked, edited by hand), so every file
overfit reads from one is opened here: each step below the folder with O_NOFOLLOW (a
link at the file, or at frames/ or weights/, is refused, so nothing outside the folder is
read), with O_NONBLOCK (a FIFO must not hang the open), then checked with fstat on the
descriptor itself (a regular file, no larger than its kind's limit in `limits.LIMITS`). A file
refused raises `NotPlainFile` (an OSError) whose message names the file and the problem;
the callers (`runs`, `loading`, the lab) turn it into their one-line error.

Also here: the header of a safetensors file, checked (size, dtypes, shapes, offsets)
before its data is read, and a folder's lock: taken (`take_lock`) and probed without
being taken (`lock_taken`), so the lab polling a folder never makes a trainer fail.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Mapping

from .limits import most

# The most bytes read from each kind of file, and why that is enough: in the one table of limits (`limits`).
KINDS = {"config": "config_file", "ending": "ending_file", "metrics": "metrics_file", "picture": "picture_file",
         "weights": "weights_file", "safetensors header": "safetensors_header", "checkpoint slack": "checkpoint_slack",
         "results": "results_file", "sweep spec": "sweep_spec_file", "signature": "sweep_signature_file",
         "ray state": "ray_state_file"}
# A checkpoint holds the model and Adam's two moments in float32: 12 bytes per parameter, 16 with room to spare.
CHECKPOINT_BYTES_PER_PARAMETER = 16

_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# safetensors dtypes by their bytes per element.
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class NotPlainFile(OSError):
    """A file that is not read: a link on the way to it, not a regular file, or larger than its limit."""


def limit(kind: str) -> int:
    """The byte limit of a kind of file (`KINDS`, `limits.LIMITS`)."""
    return most(KINDS[kind])


def checkpoint_limit(parameters: int) -> int:
    """The largest checkpoint of a model of `parameters` parameters: its weights and Adam state, and the slack."""
    return CHECKPOINT_BYTES_PER_PARAMETER * parameters + limit("checkpoint slack")


def _is_link_error(e: OSError) -> bool:
    """What opening a link with O_NOFOLLOW raises (ELOOP; EMLINK on FreeBSD), or a file where a folder should be."""
    return e.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)


def _checked(fd: int, name: str, max_bytes: int | None, kind: str | None) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise NotPlainFile(f"{name} is not a regular file (a FIFO, device or folder is never read)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise NotPlainFile(f"{name} is {st.st_size:,} bytes, more than the {max_bytes:,} a {kind or 'file'} of a run may have")


def open_plain_file(folder: Path, *parts: str, kind: str | None = None, max_bytes: int | None = None,
                    follow_folder: bool = False) -> BinaryIO:
    """`folder/parts...` opened for reading without following a symbolic link at any step below `folder`.

    `folder` itself must not be a link either unless `follow_folder` (a run named on the command
    line may be; the folders above it may always be: the runs folder is the user's choice). The
    file must be a regular file of at most `max_bytes` (or its `kind`'s limit, `KINDS`). Raises
    FileNotFoundError when a part is missing and `NotPlainFile` otherwise, so nothing outside
    `folder` is ever opened and nothing blocks. Where the platform opens relative to a folder
    (POSIX), every step is opened from the previous one with O_NOFOLLOW; elsewhere each step is
    checked with lstat and the opened file compared with it.
    """
    if kind is not None and max_bytes is None:
        max_bytes = limit(kind)
    name = "/".join(parts) or folder.name
    if hasattr(os, "O_NOFOLLOW") and os.open in os.supports_dir_fd:
        fd = _open_from_folder_fds(folder, parts, follow_folder)
    else:
        fd = _open_checking_each_step(folder, parts, follow_folder)
    try:
        _checked(fd, name, max_bytes, kind)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open_from_folder_fds(folder: Path, parts: tuple[str, ...], follow_folder: bool) -> int:
    try:
        fd = os.open(folder, (_OPEN & ~os.O_NOFOLLOW if follow_folder else _OPEN) | _DIRECTORY)
    except OSError as e:
        if _is_link_error(e):
            raise NotPlainFile(f"{folder.name} is a symbolic link (or not a folder)") from None
        raise
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                child = os.open(part, _OPEN | (0 if last else _DIRECTORY), dir_fd=fd)
            except OSError as e:
                if _is_link_error(e):
                    raise NotPlainFile(f"{'/'.join(parts[:i + 1])} is a symbolic link (or not a {'file' if last else 'folder'})") from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_checking_each_step(folder: Path, parts: tuple[str, ...], follow_folder: bool) -> int:
    path = folder.joinpath(*parts)
    steps = [folder.joinpath(*parts[:i + 1]) for i in range(len(parts))]
    for step in ([] if follow_folder else [folder]) + steps:
        if stat.S_ISLNK(os.lstat(step).st_mode):
            raise NotPlainFile(f"{step.name} is a symbolic link")
    before = os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise NotPlainFile(f"{path.name} is not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise NotPlainFile(f"{path.name} changed while it was opened")
    return fd


def read_plain(folder: Path, *parts: str, kind: str, follow_folder: bool = False) -> bytes:
    """The whole of a file opened by `open_plain_file`, at most its kind's limit even if it grows meanwhile."""
    cap = limit(kind)
    with open_plain_file(folder, *parts, kind=kind, follow_folder=follow_folder) as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise NotPlainFile(f"{'/'.join(parts)} is more than the {cap:,} bytes a {kind} of a run may have")
    return data


def plain_folder(folder: Path, name: str) -> Path | None:
    """`folder/name` if it is a folder and no link; None if it does not exist; `NotPlainFile` otherwise.

    For frames/ and weights/: files are listed, written and removed there, so a link would
    let a run folder's owner list, fill or empty any folder elsewhere.
    """
    path = folder / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(mode):
        raise NotPlainFile(f"{name} is {'a symbolic link' if stat.S_ISLNK(mode) else 'not a folder'}; "
                           "a run folder's frames and weights are kept only in folders of its own")
    return path


def is_plain_file(path: Path) -> bool:
    """True for a regular file that is not a symbolic link (what `open_plain_file` would open, at its last step)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


# -- safetensors -------------------------------------------------------------------------------------


def safetensors_header(f: BinaryIO, name: str) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str], int]:
    """The tensors ({name: (dtype, shape)}), metadata and size in bytes of the safetensors file `f`, from its header alone.

    The header's length, JSON, dtypes, shapes and data offsets are checked against each other
    and the file's size, so nothing in the data is read and no size is taken on trust: a
    caller compares the tensors with what it expects, then reads the data (`safetensors_data`).
    Raises `NotPlainFile` (naming `name`) for anything malformed.
    """
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    prefix = f.read(8)
    if len(prefix) < 8:
        raise NotPlainFile(f"{name} is not a safetensors file: it is shorter than its header")
    (length,) = struct.unpack("<Q", prefix)
    if not 2 <= length <= min(limit("safetensors header"), size - 8):
        raise NotPlainFile(f"{name}: its header declares {length:,} bytes (at most {limit('safetensors header'):,} "
                           f"and the file's {size - 8:,} after the length)")
    try:
        header = json.loads(f.read(length))
    except (UnicodeDecodeError, ValueError):
        raise NotPlainFile(f"{name}: its safetensors header is not JSON") from None
    if not isinstance(header, dict):
        raise NotPlainFile(f"{name}: its safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise NotPlainFile(f"{name}: its safetensors metadata is not a map of strings")
    tensors, end = {}, 0
    for key, entry in sorted(header.items(), key=lambda kv: _offsets(kv[1])):
        dtype, shape, (begin, stop) = _entry(name, key, entry)
        count = 1
        for n in shape:
            count *= n
        if begin != end or stop - begin != count * _DTYPE_BYTES[dtype]:
            raise NotPlainFile(f"{name}: tensor {key!r} does not lie where its shape and dtype say")
        tensors[key], end = (dtype, shape), stop
    if 8 + length + end != size:
        raise NotPlainFile(f"{name} is {size:,} bytes, but its header accounts for {8 + length + end:,}")
    return tensors, metadata, size


def _offsets(entry: object) -> tuple[int, int]:
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    ok = isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
    return (offsets[0], offsets[1]) if ok else (-1, -1)  # type: ignore[index]


def _entry(name: str, key: str, entry: object) -> tuple[str, tuple[int, ...], tuple[int, int]]:
    dtype = entry.get("dtype") if isinstance(entry, dict) else None
    shape = entry.get("shape") if isinstance(entry, dict) else None
    begin, stop = _offsets(entry)
    if dtype not in _DTYPE_BYTES or not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape) \
            or not 0 <= begin <= stop:
        raise NotPlainFile(f"{name}: tensor {key!r} has no valid dtype, shape or offsets in the header")
    return dtype, tuple(shape), (begin, stop)


def check_tensors(name: str, found: Mapping[str, tuple[str, tuple[int, ...]]], expected: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse (`NotPlainFile`) tensors whose names or shapes are not the model's: before their data is read."""
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        what = "; ".join(part for part in (f"missing {', '.join(missing[:3])}" if missing else "",
                                           f"unexpected {', '.join(extra[:3])}" if extra else "") if part)
        raise NotPlainFile(f"{name} does not hold the config's model ({what})")
    for key, shape in expected.items():
        if tuple(found[key][1]) != tuple(shape):
            raise NotPlainFile(f"{name}: {key} is {list(found[key][1])} where the config's model has {list(shape)}")


def read_safetensors(f: BinaryIO, name: str, shapes: Mapping[str, tuple[int, ...]] | None = None) -> tuple[bytes, dict[str, str]]:
    """The bytes of the safetensors file `f` and its metadata, read only once its header passed `safetensors_header` and,
    given the model's `shapes` ({name: shape}), `check_tensors`: nothing larger than that model is read."""
    tensors, metadata, size = safetensors_header(f, name)
    if shapes is not None:
        check_tensors(name, tensors, shapes)
    f.seek(0)
    return f.read(size), metadata


# -- the folder's lock -------------------------------------------------------------------------------

# Taking a lock, or probing it where flock does not exist, one thread at a time: the OS lock does not tell this
# process's threads apart, so two threads probing at once (two GETs of the lab) would each see the other as a holder.
_TAKING = threading.Lock()
# How long `take_lock` waits out other processes' probes (each holds the lock shared for microseconds), in seconds.
PROBE_WAIT = 2.0


def take_lock(path: Path) -> Any:
    """The lock file `path` held by this process (a `filelock.FileLock`: flock on POSIX, msvcrt on Windows), or None
    when another holds it. A probe (`lock_taken`) met on the way is waited out; a link at `path` is `NotPlainFile`."""
    from filelock import FileLock, Timeout

    if path.is_symlink():  # older filelock versions open the lock file through a link, truncating what it points to
        raise NotPlainFile(f"{path.name} is a symbolic link")
    lock, deadline = FileLock(str(path), timeout=0), time.monotonic() + PROBE_WAIT
    while True:
        try:
            with _TAKING:
                lock.acquire()
            return lock
        except Timeout:
            if lock_taken(path) is not False or time.monotonic() > deadline:
                return None
            time.sleep(0.002)  # only probes hold it: each lets go within microseconds


def lock_taken(path: Path) -> bool:
    """Whether the lock file `path` is held now by another process (or another lock object of this one).

    Asked with a shared, non-blocking flock released at once: the probe never takes the lock
    exclusively, and a locker that meets only probes waits them out (`take_lock`), so a probe
    cannot make a real locker fail. False when there is no lock file. Where flock does not exist
    (Windows), the lock is taken for an instant instead, one thread at a time.
    """
    try:
        import fcntl
    except ImportError:
        return _taken_by_trying(path)
    try:
        fd = os.open(path, _OPEN)
    except OSError:  # none, a link (never the lock: `take_lock` refuses it), or unreadable: nobody holds it here
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return True
        if e.errno == errno.ENOSYS:  # a file system without flock
            return _taken_by_trying(path)
        return False
    finally:
        os.close(fd)  # closing releases the shared lock
    return False


def _taken_by_trying(path: Path) -> bool:
    from filelock import FileLock, Timeout

    if not path.exists():
        return False
    probe = FileLock(str(path), timeout=0)
    with _TAKING:  # a probe of this process must not make another probe, or a lock, see the folder taken
        try:
            probe.acquire()
        except Timeout:
            return True
        except OSError:
            return False
        probe.release()
    return False
