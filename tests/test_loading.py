"""`vreason_hf.loading`: folders, named models and Hub ids; the up-front Hub check; quiet loading."""

from __future__ import annotations

import logging
import socket

import huggingface_hub.file_download
import pytest
import torch
from huggingface_hub import constants
from transformers.utils import logging as hf_logging

from vreason_hf.assets import named_model_path
from vreason_hf.cli import main
from vreason_hf.loading import auto_model_class, hub_reachable, load_model, resolve_model
from vreason_hf.testing import FAMILIES, build_tiny_qwen2_5_vl


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def online_without_network(monkeypatch, closed_port, tmp_path):
    """HF_HUB_OFFLINE unset, the Hub endpoint unreachable, an empty Hugging Face cache."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    def no_request(url, *args, **kwargs):  # a request would spend ~25 s in retries before failing
        raise AssertionError(f"unexpected request to the Hub: {url}")

    monkeypatch.setattr(huggingface_hub.file_download, "get_hf_file_metadata", no_request)
    return tmp_path / "hub"


@pytest.fixture
def bars():
    """Set transformers' progress bars on or off for one test; restore them and its verbosity afterwards."""
    enabled, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()

    def switch(on: bool) -> None:
        (hf_logging.enable_progress_bar if on else hf_logging.disable_progress_bar)()

    yield switch
    switch(enabled)
    hf_logging.set_verbosity(verbosity)


@pytest.mark.parametrize("family", [family.fixture for family in FAMILIES.values()])
def test_auto_model_class_rebuilds_the_generating_class_from_a_config_object_or_its_json(family, request):
    """One rule for every surface: loading reads config objects, model cards read `config.json` dicts."""
    model = request.getfixturevalue(family)[0]
    chosen = auto_model_class(model.config)
    assert auto_model_class(model.config.to_dict()) is chosen
    rebuilt = chosen.from_config(
        model.config
    )  # the wrong class raises, and AutoModel gives a head-less backbone
    assert type(rebuilt) is type(model) and rebuilt.can_generate()


def test_hub_reachable_tells_a_listening_port_from_a_closed_one(closed_port):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert hub_reachable(f"http://127.0.0.1:{server.getsockname()[1]}")
    assert not hub_reachable(f"http://127.0.0.1:{closed_port}")
    assert not hub_reachable("not a url")


def test_local_folder_wins_over_a_named_model(tmp_path, monkeypatch):
    (tmp_path / "smollm2").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_model("smollm2") == str(tmp_path / "smollm2")
    assert resolve_model("tiny-qwen2.5-vl") == "tiny-qwen2.5-vl"


def test_missing_folder_is_named():
    with pytest.raises(
        FileNotFoundError, match=r"Model folder not found: '\./nowhere'.*smollm2, tiny-qwen2\.5-vl"
    ):
        resolve_model("./nowhere")


def test_offline_mode_and_uncached_hub_id_fails_with_the_fixes(monkeypatch, tmp_path):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(
        FileNotFoundError, match=r"'org/model'.*HF_HUB_OFFLINE=1 is set but it is not in the local"
    ):
        resolve_model("org/model")


def test_unreachable_hub_and_uncached_model_fails_at_once(online_without_network):
    with pytest.raises(
        ConnectionError, match=r"Cannot download model 'org/model'.*not reachable.*HF_HUB_OFFLINE=1"
    ):
        load_model("org/model", device="cpu")


def test_unreachable_hub_loads_a_cached_model_without_network(online_without_network, caplog):
    """A model in the Hugging Face cache loads from its snapshot folder, with the builder's weights."""
    snapshot = online_without_network / "models--org--tiny" / "snapshots" / ("0" * 40)
    model, processor = build_tiny_qwen2_5_vl(seed=0)
    model.save_pretrained(snapshot)
    processor.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    assert resolve_model("org/tiny") == str(snapshot)
    with caplog.at_level(logging.WARNING, logger="vreason_hf"):
        loaded, loaded_processor = load_model("org/tiny", device="cpu")
    assert "not reachable: loading 'org/tiny' from the local cache" in caplog.text
    assert type(loaded_processor).__name__ == type(processor).__name__
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_loading_is_quiet_unless_third_party_bars_are_on(bars, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VREASON_HF_CACHE", str(tmp_path / "cache"))
    bars(False)
    model, _ = load_model("tiny-qwen2.5-vl", device="cpu")  # first use: builds and saves the folder
    quiet = capsys.readouterr().err
    assert model.training is False and named_model_path("tiny-qwen2.5-vl").is_dir()
    assert "Loading weights" not in quiet and "Writing model shards" not in quiet, quiet
    bars(True)
    load_model("tiny-qwen2.5-vl", device="cpu")
    assert "Loading weights" in capsys.readouterr().err


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_vreason_run_is_quiet_by_default_and_verbose_brings_bars_back(verbose, bars, capsys, real_clip):
    bars(True)  # what a fresh process starts with: the command itself must turn them off
    argv = ["--verbose"] if verbose else []
    argv += ["run", "--model", "tiny-qwen2.5-vl", "--video", str(real_clip), "--question", "Why?"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--max-new-tokens", "2", "--num-frames", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0, err
    assert ("Loading weights" in err) is verbose, err
