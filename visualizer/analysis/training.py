"""Train a copy of the model on one sentence for a few steps, and watch p(target) rise as the loss falls.

The shared model is never touched: training runs on `copy.deepcopy(lm.model)`, which is
returned as a LoadedModel so `analysis.analyze` can show the same tables before and after.
Masked labels (-100) leave the loss and so get no gradient. At most `TrainingSlots.size` runs at
once (VISUALIZER_TRAINING_CONCURRENCY); trained copies live in `trained_copies`. Pure: no gradio, no plotly.
"""

from __future__ import annotations

import copy
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..errors import InputError
from ..model.loading import LoadedModel
from ..model.tokens import Token
from .one_pass import IGNORE_INDEX, Analysis, analyze, encode, make_labels
from .shifts import target_log_probs

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MAX_STEPS = 50
"""Most optimizer steps one run may take."""
DEFAULT_STEPS = 10
OPTIMIZERS = ("adamw", "sgd")
DEFAULT_LR = {"adamw": 1e-4, "sgd": 1e-3}
"""Learning rates that visibly lower the bundled model's loss in 10 steps without blowing up."""
MAX_LR = 1.0
MAX_TOKENS = 256
"""Longest text trained on, in tokens: memory and time grow with it."""
MAX_SEED = 2**32 - 1

Progress = Callable[[int, int, float], None]
"""Called after each step with (step, total steps, loss after that step)."""


@dataclass
class TrainingStep:
    """The model's state after `step` updates (step 0: before training)."""

    step: int
    loss: float | None
    """The model's own loss on the text (masked labels left out); None once it is not a number."""
    p_target: list[float | None]
    """(n-1,) p of the true token at each position k = 1..n-1, masked ones included (None: not a number)."""

    def to_dict(self) -> dict:
        """The JSON form."""
        return {"step": self.step, "loss": self.loss, "p_target": self.p_target}


@dataclass
class TrainingRun:
    """What N optimizer steps on one text did, and the trained copy to analyse."""

    model: str
    """The name of the model that was copied and trained."""
    text: str
    tokens: list[Token]
    """(n,) the tokens trained on."""
    labels: list[int]
    """(n,) labels as fed to the model: input_ids with -100 where masked."""
    optimizer: str
    """'adamw' or 'sgd'."""
    lr: float
    steps: int
    """Steps requested."""
    history: list[TrainingStep]
    """(S+1,) the state before training and after each of the S steps taken."""
    seconds: float
    """Wall-clock time of the run, copy included."""
    seed: int = 0
    """The seed torch's RNG was set to for the run (eval mode uses no randomness; kept to repeat a run)."""
    trained: LoadedModel | None = field(default=None, repr=False)
    """The trained copy (eval mode, no grad); not part of the JSON."""
    notices: list[str] = field(default_factory=list)

    @property
    def losses(self) -> list[float | None]:
        """(S+1,) the loss before training and after each step."""
        return [h.loss for h in self.history]

    @property
    def losses_before_updates(self) -> list[float | None]:
        """(S,) the loss each step's update started from: losses[:-1] (the last is the trained copy's)."""
        return self.losses[:-1]

    def p_target_grid(self) -> list[list[float]]:
        """(n-1, S+1) p(target) with positions as rows and steps as columns: a heatmap's z."""
        return [list(col) for col in zip(*(h.p_target for h in self.history))]

    def to_dict(self) -> dict:
        """The JSON form (without the trained weights)."""
        return {
            "model": self.model,
            "trained_model": None if self.trained is None else self.trained.name,
            "text": self.text,
            "tokens": [t.to_dict() for t in self.tokens],
            "labels": self.labels,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "seed": self.seed,
            "steps": self.steps,
            "steps_taken": len(self.history) - 1,
            "losses": self.losses,
            "history": [h.to_dict() for h in self.history],
            "p_target_grid": self.p_target_grid(),
            "seconds": self.seconds,
            "notices": self.notices,
        }


# ---------------------------------------------------------------- inputs


def validate_options(steps, optimizer: str, lr) -> tuple[int, str, float]:
    """(steps, optimizer, lr) checked, or an InputError saying what is allowed; lr None -> the default."""
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not float(steps).is_integer():
        raise InputError(f"Steps must be a whole number from 1 to {MAX_STEPS}.")
    if not 1 <= steps <= MAX_STEPS:
        raise InputError(f"Steps must be from 1 to {MAX_STEPS}, not {int(steps)}.")
    name = optimizer.strip().lower() if isinstance(optimizer, str) else ""
    if name not in OPTIMIZERS:
        raise InputError(f"The optimizer must be AdamW or SGD, not {optimizer!r}.")
    lr = DEFAULT_LR[name] if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= MAX_LR:
        raise InputError(f"The learning rate must be a number above 0 and at most {MAX_LR} (e.g. {DEFAULT_LR[name]}).")
    return int(steps), name, float(lr)


def validate_seed(seed) -> int:
    """A seed that is a whole number in 0..MAX_SEED; None -> a fresh random one (reported with the run)."""
    if seed is None:
        return random.SystemRandom().randrange(MAX_SEED + 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"The seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}.")
    return seed


class TrainingSlots:
    """How many training runs may go on at once (a semaphore): each holds a model copy and its optimizer
    state, so the server bounds them; a run that finds no free slot within `wait_s` is refused."""

    def __init__(self, size: int = 1):
        if size < 1:
            raise ValueError("at least one training slot")
        self.size = size
        self.running = 0
        """Runs holding a slot now."""
        self._free = threading.BoundedSemaphore(size)
        self._count = threading.Lock()

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take a slot, waiting at most `wait_s` seconds (0: not at all)."""
        took = self._free.acquire(timeout=wait_s) if wait_s > 0 else self._free.acquire(blocking=False)
        if took:
            with self._count:
                self.running += 1
        return took

    def release(self) -> None:
        """Give a slot back."""
        with self._count:
            self.running -= 1
        self._free.release()


SLOTS = TrainingSlots(1)
"""The default slots of a process that says nothing else (the CLI): one run at a time."""


# ---------------------------------------------------------------- training


def train_on_text(
    text: str,
    lm: LoadedModel,
    steps: int = DEFAULT_STEPS,
    optimizer: str = "adamw",
    lr: float | None = None,
    mask_first: int = 0,
    masked=(),
    bos: bool = False,
    max_tokens: int | None = None,
    progress: Progress | None = None,
    wait_s: float = 0.0,
    seed: int | None = None,
    slots: TrainingSlots = SLOTS,
) -> TrainingRun:
    """Take `steps` optimizer steps on a copy of lm.model, recording loss and p(target) after each.

    `seed` sets torch's RNG inside the run only (forked: other threads' draws are untouched);
    None picks one, recorded in the run so it can be repeated."""
    steps, optimizer, lr = validate_options(steps, optimizer, lr)
    seed = validate_seed(seed)
    ids, labels = _inputs(text, lm, mask_first, masked, bos, max_tokens)
    if not slots.acquire(wait_s):
        raise InputError(
            f"{slots.size} training run{'s are' if slots.size > 1 else ' is'} in progress, the most "
            "this server runs at once; try again in a moment."
        )
    try:
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _trainable_copy(lm.model)
            history, notices = _run(model, ids, labels, steps, optimizer, lr, progress)
        model.requires_grad_(False)
        model.eval()
    finally:
        slots.release()
    taken = len(history) - 1
    trained = LoadedModel(f"{lm.name} (trained {taken} steps)", model, lm.tokenizer, lm.decoder, "trained")
    return TrainingRun(
        lm.name,
        text,
        lm.decoder.tokens(ids),
        labels,
        optimizer,
        lr,
        steps,
        history,
        time.perf_counter() - start,
        seed,
        trained,
        notices,
    )


@dataclass
class BeforeAfter:
    """A training run with the text's analysis before and after it (the same labels in both)."""

    run: TrainingRun
    before: Analysis
    after: Analysis

    def to_dict(self, sentence_vocab: bool = True) -> dict:
        """The CLI's JSON: the run's settings, the loss before each update, and both analyses."""
        run = self.run
        return {
            "model": run.model,
            "text": run.text,
            "steps": run.steps,
            "steps_taken": len(run.history) - 1,
            "optimizer": run.optimizer,
            "lr": run.lr,
            "seed": run.seed,
            "losses": run.losses_before_updates,
            "notices": run.notices,
            "before": self.before.to_dict(sentence_vocab=sentence_vocab),
            "after": self.after.to_dict(sentence_vocab=sentence_vocab),
        }


def train_before_after(
    text: str,
    lm: LoadedModel,
    top_k: int = 10,
    mask_first: int = 0,
    masked=(),
    bos: bool = False,
    max_tokens: int | None = None,
    max_top_k: int = 50,
    **training,
) -> BeforeAfter:
    """Analyse the text, train a copy on it (`training`: train_on_text's options), analyse it again with the copy.

    The options are checked before any forward pass, so a bad one costs nothing."""
    validate_options(training.get("steps", DEFAULT_STEPS), training.get("optimizer", "adamw"), training.get("lr"))
    validate_seed(training.get("seed", 0))
    before = analyze(
        text, lm, top_k=top_k, mask_first=mask_first, masked=masked, bos=bos, max_tokens=max_tokens, max_top_k=max_top_k
    )
    skipped = [i for i, label in enumerate(before.labels) if label == IGNORE_INDEX]
    run = train_on_text(text, lm, masked=skipped, bos=bos, max_tokens=max_tokens, **training)
    assert run.trained is not None  # train_on_text always returns its trained copy
    after = analyze(text, run.trained, top_k=top_k, masked=skipped, bos=bos, max_tokens=max_tokens, max_top_k=max_top_k)
    return BeforeAfter(run, before, after)


def _inputs(text, lm, mask_first, masked, bos, max_tokens) -> tuple[list[int], list[int]]:
    """(input_ids, labels) as analyze builds them; refuses a text with nothing to train on."""
    ids, _ = encode(lm, text, bos=bos, max_tokens=max_tokens)
    if len(ids) < 2:
        raise InputError("The text is a single token: there is no next token to train on.")
    if len(ids) > MAX_TOKENS:
        raise InputError(f"The text has {len(ids)} tokens; training takes at most {MAX_TOKENS}.")
    template = make_labels(len(ids), mask_first, masked)
    labels = [i if m == 0 else IGNORE_INDEX for i, m in zip(ids, template)]
    if all(label == IGNORE_INDEX for label in labels[1:]):
        raise InputError("Every label is masked (-100): there is nothing to train on.")
    return ids, labels


def _trainable_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A deep copy with gradients on, in eval mode (no dropout, so each step's loss is exact)."""
    clone = copy.deepcopy(model)
    clone.requires_grad_(True)
    clone.eval()
    return clone


def _make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """AdamW (no weight decay, so only the sentence moves the weights) or plain SGD."""
    params = list(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=False)
    return torch.optim.SGD(params, lr=lr, foreach=False)


def _step_in_backward(model: torch.nn.Module, name: str, lr: float) -> list:
    """Give each parameter its own optimizer, stepped (and its gradient freed) as soon as backward fills it.

    The updates equal one optimizer stepped after backward, but the gradients of all the
    weights are never held at once: about one model copy less memory (0.5 GB for 135M).
    Returns the hook handles, to remove after training.
    """
    handles = []
    for param in model.parameters():  # tied weights appear once
        opt = _make_optimizer(name, [param], lr)

        def step(p, opt=opt):
            opt.step()
            p.grad = None

        handles.append(param.register_post_accumulate_grad_hook(step))
    return handles


def _run(model, ids, labels, steps, optimizer, lr, progress):
    """The loop: forward (record), backward (which steps); a last forward records the final state."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)  # (1, n)
    label_ids = torch.tensor([labels], device=device)  # (1, n)
    handles = _step_in_backward(model, optimizer, lr)
    history, notices = [], []
    try:
        for step in range(steps + 1):
            with torch.set_grad_enabled(step < steps):
                out = model(input_ids=input_ids, labels=label_ids)
            history.append(_record(step, out, input_ids))
            if step and progress is not None:
                progress(step, steps, history[-1].loss)
            if history[-1].loss is None:
                notices.append(f"The loss stopped being a number after {step} steps: learning rate {lr:g} is too high.")
                break
            if step < steps:
                out.loss.backward()  # each parameter's optimizer steps inside
            del out
    finally:
        for handle in handles:
            handle.remove()
    return history, notices


def _record(step: int, out, input_ids: torch.Tensor) -> TrainingStep:
    """Loss and p(target) at every position from one forward pass's outputs."""
    with torch.no_grad():  # out.logits: (1, n, V); logits[k-1] predict token k
        n = input_ids.shape[1]
        logp = target_log_probs(out.logits[0], range(n - 1), input_ids[0, 1:].tolist())  # (n-1,)
    return TrainingStep(step, _finite(out.loss.item()), [_finite(math.exp(v)) for v in logp])


def _finite(value: float) -> float | None:
    """The value, or None when it is NaN or infinite (JSON has no NaN)."""
    return value if math.isfinite(value) else None
