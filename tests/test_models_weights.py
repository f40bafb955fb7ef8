"""Weights: offline resolution, fast failure offline, imported files, downloads, transforms."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision
from PIL import Image

from workbench.errors import Cancelled, UserError
from workbench.models.transfer import build_model
from workbench.models.transforms import build_transform
from workbench.models.weights import (
    install_offline_weights,
    iter_download,
    load_weights_file,
    resolve_weights,
)

MOBILENET_FILE = "mobilenet_v2-b0353104.pth"


@pytest.fixture
def tmp_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, so tests neither read nor write the user's."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert Path(torch.hub.get_dir()) == tmp_path / "torch" / "hub"
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def offline_hub(tmp_hub: Path) -> Path:
    """The hub cache holding only what `weights --install-offline` puts there."""
    install_offline_weights()
    return tmp_hub


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails at once, as on a machine without network."""

    def refuse(*_args, **_kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_install_offline_weights_puts_the_exact_mobilenet_file_in_the_cache(tmp_hub):
    installed = install_offline_weights()
    assert installed == [tmp_hub / MOBILENET_FILE]
    digest = hashlib.sha256(installed[0].read_bytes()).hexdigest()
    assert digest.startswith("b0353104")
    assert install_offline_weights() == []  # already there: nothing to do


def test_mobilenet_loads_from_the_cache_with_networking_blocked(offline_hub, no_network):
    weights = resolve_weights("mobilenet_v2", "DEFAULT")  # V2 is not on disk: V1 is
    assert weights == torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    model = build_model("mobilenet_v2", weights="DEFAULT", num_classes=4)
    state = torch.load(offline_hub / MOBILENET_FILE, weights_only=True)
    assert torch.equal(model.stages[0][0][0].weight, state["features.0.0.weight"])
    assert model.pretrained and model.num_classes == 4


def test_missing_weights_without_network_fail_fast_with_a_hint(tmp_hub, no_network):
    start = time.monotonic()
    with pytest.raises(UserError, match=r"no network: put resnet18-f37072fd\.pth in .*"
                                        r"checkpoints, or import a weights file"):
        build_model("resnet18", weights="IMAGENET1K_V1")
    assert time.monotonic() - start < 5


def test_unknown_weights_name_lists_the_choices():
    with pytest.raises(UserError, match="no weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        resolve_weights("resnet18", "IMAGENET9K")


def test_weights_file_for_another_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(UserError, match=r"weights are for another architecture: \d+ missing "
                                        r"keys, e\.g\. features\.0\.0\.weight"):
        build_model("mobilenet_v2", weights=str(path))


def test_weights_file_with_another_class_count_names_the_layer(tmp_path):
    path = tmp_path / "ten.pth"
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=10).state_dict(), path)
    with pytest.raises(UserError, match=r"classifier\.3\.weight has shape \[10, 1024\]"):
        build_model("mobilenet_v3_small", weights=str(path))


def test_wrapped_ddp_state_dict_loads(tmp_path):
    reference = torchvision.models.mobilenet_v3_small()
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    model = build_model("mobilenet_v3_small", weights=str(path))
    assert model.pretrained
    assert torch.equal(model.head[-1].weight, reference.classifier[-1].weight)


def test_transfer_model_checkpoint_round_trips(tmp_path):
    trained = build_model("mobilenet_v3_small", weights="random", num_classes=3).eval()
    path = tmp_path / "trained.pth"
    torch.save({"model": trained.state_dict()}, path)
    loaded = build_model("mobilenet_v3_small", weights=str(path), num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))


def test_corrupt_weights_file_is_a_user_error(tmp_path):
    path = tmp_path / "broken.pth"
    buffer = io.BytesIO()
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), buffer)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # truncated
    with pytest.raises(UserError, match="cannot read broken.pth: .*corrupt or truncated"):
        build_model("mobilenet_v3_small", weights=str(path))


class _Payload:
    """Unpickling this creates a file: the stand-in for code an attacker would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _Payload(marker)}, path)
    model = torchvision.models.mobilenet_v3_small()
    with pytest.raises(UserError, match="refused to load evil.pth"):
        load_weights_file(model, path)
    assert not marker.exists()
    # the payload is live: an unsafe load would have run it
    torch.load(path, weights_only=False)["state_dict"].close()
    assert marker.exists()


def _weights_file(tmp_path: Path, size: int = 300_000) -> SimpleNamespace:
    data = torch.randn(size // 4).numpy().tobytes()
    digest = hashlib.sha256(data).hexdigest()[:8]
    source = tmp_path / "server" / f"tiny-{digest}.pth"
    source.parent.mkdir()
    source.write_bytes(data)
    return SimpleNamespace(url=source.as_uri(), data=data, name=source.name)


def test_download_from_a_file_url_is_atomic_and_reports_progress(tmp_path):
    weights = _weights_file(tmp_path)
    dest = tmp_path / "cache"
    events = list(iter_download(weights, dest_dir=dest))
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].finished and events[-1].done == len(weights.data)
    assert (dest / weights.name).read_bytes() == weights.data
    assert [p.name for p in dest.iterdir()] == [weights.name]


class _CutOffResponse(io.BytesIO):
    """A response that announces more bytes than it delivers, then drops the connection."""

    headers = {"Content-Length": "300000"}

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        if not chunk:
            raise ConnectionResetError("connection reset by peer")
        return chunk


def test_cut_off_download_leaves_no_file(tmp_path):
    weights = _weights_file(tmp_path)
    dest = tmp_path / "cache"
    opener = lambda url, timeout: _CutOffResponse(weights.data[:100_000])  # noqa: E731
    with pytest.raises(UserError, match="was cut off"):
        list(iter_download(weights, dest_dir=dest, opener=opener))
    assert list(dest.iterdir()) == []


def test_download_with_the_wrong_hash_leaves_no_file(tmp_path):
    weights = _weights_file(tmp_path)
    bad = SimpleNamespace(url=weights.url.replace(weights.name[5:13], "00000000"))
    Path(bad.url.removeprefix("file://")).write_bytes(weights.data)
    dest = tmp_path / "cache"
    with pytest.raises(UserError, match="is damaged"):
        list(iter_download(bad, dest_dir=dest))
    assert list(dest.iterdir()) == []


def test_cancelled_download_leaves_no_file(tmp_path):
    weights = _weights_file(tmp_path)
    dest = tmp_path / "cache"
    stop = threading.Event()
    with pytest.raises(Cancelled):
        for _ in iter_download(weights, stop=stop, dest_dir=dest):
            stop.set()
    downloads = iter_download(weights, dest_dir=dest)
    next(downloads)
    downloads.close()  # the other way to cancel: stop iterating
    assert list(dest.iterdir()) == []


def test_transform_follows_the_weights_and_a_lower_input_size():
    weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    image = Image.new("RGB", (120, 90), (124, 116, 104))  # the ImageNet mean colour
    default = build_transform(weights)(image)
    small = build_transform(weights, input_size=64)(image)
    augmented = build_transform(weights, input_size=64, train=True, augment="standard")(image)
    assert default.shape == (3, 224, 224) and default.dtype == torch.float32
    assert small.shape == augmented.shape == (3, 64, 64)
    assert small.abs().max() < 0.02  # normalized with ImageNet mean / std
    assert build_transform("vit_b_16")(image).shape == (3, 224, 224)  # random init: its preset
    with pytest.raises(UserError, match="too small"):
        build_transform(weights, input_size=8)
