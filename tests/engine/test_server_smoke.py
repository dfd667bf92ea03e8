"""The `vllm_server` fixture serves real numbers: vLLM's own tokenizer and prompt log-probabilities for the
bundled model's exported weights agree with the in-process model (a zero embedding, as a checkpoint holding only
`lm_head.weight` gives, would put every log p at ln(1/49152) = -10.8027)."""

import httpx
import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.engine]

TEXT = "the dog likes food"
TOP = 5


def test_the_server_gives_the_in_process_models_log_probabilities(vllm_server, bundled_lm):
    ids = bundled_lm.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    tokenized = httpx.post(
        f"{vllm_server.url}/tokenize",
        json={"model": vllm_server.served_name, "prompt": TEXT, "add_special_tokens": False},
        timeout=30,
    )
    assert tokenized.status_code == 200, tokenized.text
    assert tokenized.json()["tokens"] == ids == [1195, 2767, 15044, 1114]

    answer = httpx.post(
        f"{vllm_server.url}/v1/completions",
        json={
            "model": vllm_server.served_name,
            "prompt": ids,
            "max_tokens": 1,
            "prompt_logprobs": TOP,
            "temperature": 0,
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    served = answer.json()["choices"][0]["prompt_logprobs"]  # [None, {id: {logprob, rank, ...}} per position]
    assert served[0] is None and len(served) == len(ids)

    with torch.no_grad():
        logits = bundled_lm.model(torch.tensor([ids], device=bundled_lm.device)).logits[0, :-1]  # (n-1, V)
    log_p = torch.log_softmax(logits.double(), dim=-1).cpu()  # (n-1, V): row k-1 predicts token k
    for k in range(1, len(ids)):
        at = {int(token): entry for token, entry in served[k].items()}
        truth = at[ids[k]]["logprob"]
        assert truth == pytest.approx(log_p[k - 1, ids[k]].item(), abs=1e-4), (k, truth)
        top = {token: e["logprob"] for token, e in at.items() if e["rank"] <= TOP}
        assert set(top) == set(torch.topk(log_p[k - 1], TOP).indices.tolist())
        for token, value in top.items():
            assert value == pytest.approx(log_p[k - 1, token].item(), abs=1e-4)
    truths = [served[k][str(ids[k])]["logprob"] for k in range(1, len(ids))]
    assert truths == pytest.approx([-13.634, -12.715, -4.812], abs=1e-3)  # README's walkthrough of this text


def test_the_fixture_says_where_the_server_is(vllm_server):
    assert vllm_server.entry == f"vllm:{vllm_server.url}/smollm2/served"
    assert vllm_server.url.startswith("http://127.0.0.1:") and vllm_server.pid > 0
    assert (vllm_server.model_dir / "model.safetensors").is_file() and vllm_server.log_path.is_file()
    print(f"vllm_server fixture timings (s): {vllm_server.timings}")
