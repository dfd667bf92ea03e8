"""Check the engine on a CUDA machine: same numbers as on the CPU, and timings beside the bare forward pass.

Weights: the bundled model's architecture and tokenizer with random weights (the real weights do not
travel to a machine without the package); shapes, and so timings, are those of SmolLM2-135M.
Run: python scripts/cuda_check.py CONFIG_DIR OUT.json [--quick] [--model-dir DIR]
     (CONFIG_DIR holds config.json + tokenizer files; DIR: a random-weight model already built from it)
     python scripts/cuda_check.py --build-model CONFIG_DIR   (only save the random-weight model; prints its folder)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from visualizer.analysis.generation import Decoding, Generation, teacher_forcing  # noqa: E402
from visualizer.analysis.lens import logit_lens  # noqa: E402
from visualizer.analysis.one_pass import Request, analyze, measure_batch, measure_one  # noqa: E402
from visualizer.analysis.training import train_on_text  # noqa: E402
from visualizer.model.loading import load_model  # noqa: E402

WORDS = [
    "the",
    "dog",
    "likes",
    "food",
    "and",
    "the",
    "cat",
    "sleeps",
    "on",
    "the",
    "warm",
    "mat",
    "while",
    "children",
    "play",
    "outside",
]


def build_model_dir(config_dir: Path) -> str:
    """Random weights in the bundled model's shape, saved with its tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(config_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = Path(tempfile.mkdtemp(prefix="smollm2-random-"))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(config_dir).save_pretrained(out)
    return str(out)


def text_of(lm, n_tokens: int) -> str:
    """A text of exactly n tokens (or as close as the words allow)."""
    text = " ".join(WORDS[i % len(WORDS)] for i in range(n_tokens))
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    return lm.tokenizer.decode(ids)


def sync() -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int) -> list[float]:
    """Wall times of fn, synchronised with the GPU, after two warm-ups."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def agreement(lm, cpu_model) -> dict:
    """CUDA analysis vs a CPU forward pass of the same weights."""
    result = analyze("the dog likes food and the cat sleeps", lm)
    ids = torch.tensor([result.input_ids])
    with torch.no_grad():
        cpu_loss = cpu_model(ids, labels=ids).loss.item()
    return {
        "device": str(lm.device),
        "loss_cuda": result.loss,
        "loss_cpu": cpu_loss,
        "abs_diff": abs(result.loss - cpu_loss),
        "mean_equals_model_loss": abs(result.mean_token_loss - result.loss),
    }


def generation_checks(lm) -> dict:
    """Greedy equals transformers' generate; teacher forcing agrees with each step."""
    gen = Generation(lm, "The capital of France is", Decoding(max_new_tokens=12))
    gen.run()
    ids = torch.tensor([gen.prompt_ids], device=lm.device)
    with torch.no_grad():
        ref = lm.model.generate(ids, max_new_tokens=12, do_sample=False)[0, len(gen.prompt_ids) :].tolist()
    forced = teacher_forcing(gen)
    n_prompt = len(gen.prompt_ids)
    gaps = [abs(forced.positions[n_prompt - 1 + i].p_target - s.p_model) for i, s in enumerate(gen.steps)]
    sampled = Generation(lm, "Once upon a time", Decoding(max_new_tokens=8, temperature=0.8, top_p=0.9, seed=3))
    again = Generation(lm, "Once upon a time", Decoding(max_new_tokens=8, temperature=0.8, top_p=0.9, seed=3))
    return {
        "greedy_equals_generate": gen.generated_ids[: len(ref)] == ref[: len(gen.generated_ids)],
        "teacher_forcing_max_gap": max(gaps),
        "seeded_repeatable": [s.token.id for s in sampled.run()] == [s.token.id for s in again.run()],
    }


def lens_checks(lm) -> dict:
    """The lens's last layer equals the model's own output."""
    lens = logit_lens("the dog likes food", lm)
    result = analyze("the dog likes food", lm)
    last = lens.rows[-1]
    return {
        "layers": lens.layers,
        "last_layer_matches": all(abs(c.p_target - p.p_target) < 1e-5 for c, p in zip(last, result.positions)),
    }


def training_checks(lm) -> dict:
    """Training lowers the loss and leaves the shared model untouched."""
    before = [p.detach().clone() for p in lm.model.parameters()]
    start = time.perf_counter()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run = train_on_text("the dog likes food", lm, steps=10)
    seconds = time.perf_counter() - start
    unchanged = all(torch.equal(a, b) for a, b in zip(before, lm.model.parameters()))
    return {
        "loss_first": run.history[0].loss,
        "loss_last": run.history[-1].loss,
        "shared_unchanged": unchanged,
        "seconds_per_step": seconds / 10,
        "peak_cuda_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
    }


def batching_checks(lm, texts: int = 16, tokens: int = 32) -> dict:
    """A padded batch on the GPU gives each text its own pass's numbers; one batched pass vs one per text."""
    requests = [
        Request(ids, list(ids), 10)
        for ids in (
            lm.tokenizer(text_of(lm, tokens + i % 5), add_special_tokens=False)["input_ids"] for i in range(texts)
        )
    ]
    alone, together = [measure_one(lm, r) for r in requests], measure_batch(lm, requests)
    gap = max(float((a.stats["p"] - b.stats["p"]).abs().max()) for a, b in zip(alone, together))
    same_top = all(torch.equal(a.stats["top_i"], b.stats["top_i"]) for a, b in zip(alone, together))
    one_by_one = statistics.median(timed(lambda: [measure_one(lm, r) for r in requests], 5))
    batched = statistics.median(timed(lambda: measure_batch(lm, requests), 5))
    return {
        "texts": texts,
        "max_p_gap": gap,
        "same_top_ids": same_top,
        "loss_gap": max(abs(a.loss - b.loss) for a, b in zip(alone, together)),
        "one_by_one_ms": one_by_one * 1e3,
        "batched_ms": batched * 1e3,
        "speedup": one_by_one / batched,
    }


def timings(lm, lengths=(16, 64, 256, 1024, 2048)) -> list[dict]:
    """analyze() over the bare forward pass, and the per-prefix loop, by length."""
    rows = []
    for n in lengths:
        text = text_of(lm, n)
        ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]], device=lm.device)

        def forward(ids=ids):
            with torch.no_grad():
                lm.model(ids)

        bare = statistics.median(timed(forward, 10))
        full = statistics.median(timed(lambda text=text: analyze(text, lm), 10))
        row = {"tokens": ids.shape[1], "forward_ms": bare * 1e3, "analyze_ms": full * 1e3, "ratio": full / bare}
        if n <= 64:

            def loop(ids=ids):
                with torch.no_grad():
                    for k in range(1, ids.shape[1] + 1):
                        lm.model(ids[:, :k])

            row["per_prefix_loop_ratio"] = statistics.median(timed(loop, 3)) / bare
        rows.append(row)
    return rows


def main() -> None:
    """Run every check and write the results as JSON (or, with --build-model, only print a model folder)."""
    if sys.argv[1] == "--build-model":
        print(build_model_dir(Path(sys.argv[2])))
        return
    config_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    lengths = (16,) if "--quick" in sys.argv else (16, 64, 256, 1024, 2048)
    given = sys.argv.index("--model-dir") + 1 if "--model-dir" in sys.argv else None
    model_dir = sys.argv[given] if given else build_model_dir(config_dir)
    lm = load_model(model_dir)
    cpu_model = _cpu_copy(model_dir)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU dry run)"
    report = {"gpu": gpu, "torch": torch.__version__}
    for name, check in [
        ("agreement", lambda: agreement(lm, cpu_model)),
        ("generation", lambda: generation_checks(lm)),
        ("lens", lambda: lens_checks(lm)),
        ("training", lambda: training_checks(lm)),
        ("batching", lambda: batching_checks(lm)),
        ("timings", lambda: timings(lm, lengths)),
    ]:
        try:
            report[name] = check()
        except Exception as err:  # noqa: BLE001 - report every check, even after one fails
            report[name] = {"error": f"{type(err).__name__}: {err}"}
        print(name, json.dumps(report[name]), flush=True)
    out.write_text(json.dumps(report, indent=1))


def _cpu_copy(model_dir: str):
    """The same weights on the CPU, for the agreement check."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


if __name__ == "__main__":
    main()
