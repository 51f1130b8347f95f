"""A sweep folder's saved Ray state, checked before `overfit sweep --resume` starts Ray: signed, plain, bounded.

Ray's saved state (`sweeps/<name>/ray/tune`) holds pickles, and unpickling runs code, so it is
restored only if it carries this user's signature (`ray.sig`: an HMAC under a key in the user's
home) as it is now. The signature and every file of the state are read as untrusted input
(`safefiles`: no link, no FIFO, at most their limit), so a copied or edited sweep folder is
refused in one line, before Ray starts, and never hangs or fills the memory. No ray import.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OverfitError
from ..safefiles import NotPlainFile, open_plain_file, plain_folder, read_plain

EXPERIMENT = "tune"  # Ray's experiment folder inside sweeps/<name>/ray
SIGNATURE = "ray.sig"  # sweeps/<name>/ray.sig: this user's HMAC of Ray's saved state, checked before it is unpickled
KEY_FILE = Path("~/.config/overfit/sweep.key")  # the user's secret for it, made on first use, readable by the user only
# The folders a resumed sweep writes into: a link at any of them would send trials or the report somewhere else.
WRITTEN = ("ray", "runs", "report")
CHUNK = 1 << 20  # bytes hashed at a time: a state file is never held whole


def _user_key() -> bytes:
    import secrets

    path = KEY_FILE.expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # a key made meanwhile by another sweep wins
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _state_digest(sweep_dir: Path) -> str:
    """HMAC-SHA256, under the user's key, of every file of Ray's saved state (relative path and content; a link as
    the word "link", never followed). A FIFO, device or socket there, or a file over its limit, is `NotPlainFile`."""
    import hashlib
    import hmac

    mac = hmac.new(_user_key(), digestmod=hashlib.sha256)
    root = sweep_dir / "ray" / EXPERIMENT
    for path in sorted(root.rglob("*")):  # rglob never descends through a link to a folder
        if path.is_dir() and not path.is_symlink():
            continue
        relative = path.relative_to(root)
        mac.update(str(relative).encode() + b"\0")
        if path.is_symlink():
            mac.update(b"link")
        else:
            with open_plain_file(root, *relative.parts, kind="ray state") as f:  # a FIFO is refused, not waited on
                while chunk := f.read(CHUNK):
                    mac.update(chunk)
        mac.update(b"\0")
    return mac.hexdigest()


def sign_state(sweep_dir: Path) -> None:
    """Sign Ray's saved state of the sweep (after it ran or stopped), so `check_state` can tell it is this user's.
    State that could never be checked (a FIFO or an oversized file in it) is left unsigned: it cannot be resumed."""
    from ..files import write_atomic

    try:
        if plain_folder(sweep_dir, "ray") is not None and plain_folder(sweep_dir / "ray", EXPERIMENT) is not None:
            write_atomic(sweep_dir / SIGNATURE, _state_digest(sweep_dir) + "\n")
    except NotPlainFile:
        pass


def check_state(sweep_dir: Path) -> None:
    """Refuse Ray's saved state unless this user's sweep signed it as it is now."""
    import hmac

    try:
        signed = read_plain(sweep_dir, SIGNATURE, kind="signature", follow_folder=True).strip()
    except OSError:  # none, a link, a FIFO, too large: not a signature of ours
        signed = b""
    try:
        digest = _state_digest(sweep_dir).encode()
    except NotPlainFile as e:
        raise OverfitError(f"{sweep_dir}: Ray's saved state is never unpickled: {e}", field="resume") from None
    if not hmac.compare_digest(signed, digest):
        raise OverfitError(f"{sweep_dir}: Ray's saved state was not written by your sweeps on this machine, or changed since "
                           "(its signature does not match); it is never unpickled: start the sweep again under a new --name",
                           field="resume")


def check_resumable(sweep_dir: Path) -> None:
    """Everything `overfit sweep --resume` can check before Ray starts: the folders it writes into are folders of its
    own (no link), Ray's saved state is there, and it carries this user's signature (`check_state`)."""
    try:
        for name in WRITTEN:
            plain_folder(sweep_dir, name)
        state = plain_folder(sweep_dir / "ray", EXPERIMENT) if (sweep_dir / "ray").is_dir() else None
    except NotPlainFile as e:
        raise OverfitError(f"{sweep_dir} is not continued: {e}", field="resume") from None
    if state is None:
        raise OverfitError(f"{sweep_dir} has no Ray state to continue ({sweep_dir / 'ray' / EXPERIMENT} is missing)",
                           field="resume")
    check_state(sweep_dir)
