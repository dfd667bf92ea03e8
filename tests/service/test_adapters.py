"""LoRA adapters through the service: offered only with their base, Compare shows base vs adapter per token,
and a faulty adapter is one sentence while the server keeps serving (the page and the API)."""

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import LORA_TEXT
from tests.served import serve
from visualizer.errors import ModelLoadError
from visualizer.model.loading import load_model
from visualizer.service.compare import COMPARE_VIEWS, compare_analyses, compare_views
from visualizer.service.page import run_analysis, user_message
from visualizer.settings import BUNDLED_MODEL, Settings

TEXT = "the dog likes food and the cat likes fish"


def own_losses(name: str, text: str) -> list[float]:
    """The test's own −ln p of each next token under the registry's model `name` (F.cross_entropy)."""
    lm = load_model(name)
    ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]], device=lm.device)
    with torch.no_grad():
        logits = lm.model(ids).logits[0].float()
    return F.cross_entropy(logits[:-1], ids[0, 1:], reduction="none").tolist()


@pytest.fixture
def pickle_adapter(tiny_lora_dir, tmp_path) -> str:
    """A copy of the tiny adapter whose weights are pickle (adapter_model.bin) only."""
    path = tmp_path / "pickled"
    shutil.copytree(tiny_lora_dir, path)
    (path / "adapter_model.safetensors").rename(path / "adapter_model.bin")
    return str(path)


def test_an_adapter_is_offered_only_with_its_base(tiny_lora_dir, tiny_llama_dir):
    alone = Settings(model=tiny_lora_dir, models=(tiny_lora_dir,))
    with pytest.raises(ModelLoadError) as caught:
        run_analysis(TEXT, alone)
    message = user_message(caught.value)
    assert message == (
        f"'{tiny_lora_dir}' is a LoRA adapter on '{tiny_llama_dir}', which is not a model offered here: "
        "add the base to VISUALIZER_MODELS too."
    )
    both = Settings(model=tiny_lora_dir, models=(tiny_llama_dir, tiny_lora_dir))
    analysis = run_analysis(TEXT, both, model=tiny_lora_dir)
    assert analysis.model == tiny_lora_dir
    assert [p.loss for p in analysis.positions] == pytest.approx(own_losses(tiny_lora_dir, TEXT), abs=1e-5)
    assert run_analysis(TEXT, Settings(models=(tiny_lora_dir,), allow_any_model=True), tiny_lora_dir).model


@pytest.mark.parametrize("which", ["tiny", pytest.param("bundled", marks=pytest.mark.slow)])
def test_compare_shows_base_against_adapter_per_token(request, which):
    if which == "tiny":
        base, adapter = request.getfixturevalue("tiny_llama_dir"), request.getfixturevalue("tiny_lora_dir")
    else:
        base, adapter = BUNDLED_MODEL, request.getfixturevalue("bundled_lora_dir")
    settings = Settings(model=base, models=(base, adapter))
    compared = compare_analyses(TEXT, settings, base, adapter, None, top_k=5)
    assert compared.same_tokens and compared.a.model == base and compared.b.model == adapter
    want = [lb - la for la, lb in zip(own_losses(base, TEXT), own_losses(adapter, TEXT))]
    for view in COMPARE_VIEWS:
        difference = list(compare_views(compared, view).difference.data[0].y)
        assert difference == pytest.approx(want, abs=1e-4)
    assert max(abs(d) for d in difference) > 1e-2  # the adapter's training shows, token by token
    trained = len(load_model(base).tokenizer(LORA_TEXT, add_special_tokens=False)["input_ids"]) - 1
    assert sum(difference[:trained]) < 0  # better on the sentence it was trained on


def test_a_faulty_adapter_is_one_sentence_and_the_others_keep_serving(tiny_lora_dir, tiny_llama_dir, pickle_adapter):
    settings = Settings(model=tiny_llama_dir, models=(tiny_llama_dir, tiny_lora_dir, pickle_adapter))
    with pytest.raises(ModelLoadError) as caught:
        run_analysis(TEXT, settings, model=pickle_adapter)
    message = user_message(caught.value)
    assert "\n" not in message and "pickle (adapter_model.bin)" in message and "not loaded for safety" in message
    assert run_analysis(TEXT, settings, model=tiny_lora_dir).loss > 0
    assert run_analysis(TEXT, settings).loss > 0


@pytest.mark.slow
def test_the_api_analyses_an_adapter_and_answers_a_faulty_one_with_an_error(
    tiny_lora_dir, tiny_llama_dir, pickle_adapter, tmp_path
):
    from gradio_client import Client

    elsewhere = tmp_path / "base-not-offered"  # the same adapter on a base the server does not offer
    shutil.copytree(tiny_lora_dir, elsewhere)
    config = elsewhere / "adapter_config.json"
    config.write_text(config.read_text().replace(tiny_llama_dir, str(Path(tiny_llama_dir).parent / "other")))
    settings = Settings(model=tiny_llama_dir, models=(tiny_llama_dir, tiny_lora_dir, pickle_adapter, str(elsewhere)))
    with serve(settings) as url:
        client = Client(url, verbose=False)
        served = client.predict(TEXT, tiny_lora_dir, 5, api_name="/analyze")
        assert served["model"] == tiny_lora_dir
        assert [p["loss"] for p in served["positions"]] == pytest.approx(own_losses(tiny_lora_dir, TEXT), abs=1e-5)
        for name, message in ((pickle_adapter, "not loaded for safety"), (str(elsewhere), "not a model offered here")):
            with pytest.raises(Exception, match=message) as caught:
                client.predict(TEXT, name, 5, api_name="/analyze")
            assert "Traceback" not in str(caught.value)
        again = client.predict(LORA_TEXT, tiny_lora_dir, 5, api_name="/analyze")
        assert again["loss"] > 0  # the server keeps serving
