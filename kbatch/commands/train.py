"""``kbatch train``: fine-tune a Sentence-BERT model on Korean STS or NLI pairs.

Runs sentence-transformers' own trainer on one machine (``torchrun`` or ``accelerate
launch`` spread it over that machine's GPUs), evaluates on ``dev`` during training, keeps
the best checkpoint and saves it as a sentence-transformers model directory with a model
card, ready for ``--model`` in every other command.

>>> train("sts", "korsts/sts-train.tsv", "models/minilm-korsts", dev="korsts/sts-dev.tsv")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kbatch import __version__
from kbatch.errors import InputError, ModelError
from kbatch.io.pairs import MAX_SCORE, Pairs, read_pairs
from kbatch.models.card import training_section
from kbatch.models.resolve import DEFAULT_BASE_MODEL, is_transformer, load_sentence_transformer, resolve_model

LOSSES = {"sts": ("cosine", "cosent"), "nli": ("mnrl",)}
CARD = "kbatch_training.json"


@dataclass(frozen=True)
class TrainSettings:
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    seed: int = 0
    loss: str | None = None  # None: cosine for sts, mnrl for nli

    def check(self, task: str) -> str:
        """The loss to use, after refusing settings that cannot train."""
        if task not in LOSSES:
            raise InputError(f"--task must be sts or nli, got {task!r}")
        loss = self.loss or LOSSES[task][0]
        if loss not in LOSSES[task]:
            raise InputError(f"--loss for --task {task} must be one of {', '.join(LOSSES[task])}, got {loss!r}")
        if self.epochs <= 0 or self.batch_size < 2 or self.learning_rate <= 0 or not 0 <= self.warmup_ratio < 1:
            raise InputError("--epochs and --lr must be positive, --batch-size at least 2, --warmup between 0 and 1")
        return loss


def train(
    task: str,
    train_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    dev: str | os.PathLike[str] | None = None,
    nli: str | os.PathLike[str] | None = None,
    base: str = DEFAULT_BASE_MODEL,
    trust_remote_code: bool = False,
    prompt: str | None = None,
    settings: TrainSettings = TrainSettings(),
    progress: bool = True,
    log: TextIO = sys.stderr,
) -> dict:
    """Fine-tune ``base`` on ``train_path`` and save the best model (by ``dev`` Spearman when
    given, else the last) to ``output``; returns what the model card records. ``nli`` adds NLI
    pairs to an sts run (multiple-negatives ranking, batches drawn from both in proportion).
    ``prompt`` names the base's prompt put before every training and dev sentence (None: its
    default, as e5's ``query: ``; ``"none"``: no prompt); the saved model keeps the base's prompts."""
    loss_name = settings.check(task)
    if nli is not None and task != "sts":
        raise InputError("`nli` adds NLI pairs to `task` sts; to train on NLI pairs alone pass them as `train` with `task` nli")
    try:
        import accelerate  # noqa: F401
        import datasets  # noqa: F401
    except ImportError:
        raise ModelError("kbatch train needs datasets and accelerate: pip install 'kbatch[train]'") from None
    if Path(output).exists() and any(Path(output).iterdir()):
        raise InputError(f"{output} exists and is not empty; choose a new directory for the model")
    training = read_pairs(train_path, task, log)
    also = read_pairs(nli, "nli", log) if nli is not None else None
    development = read_pairs(dev, "sts", log) if dev is not None else None
    spec = resolve_model(base, trust_remote_code=trust_remote_code)
    prompt_name, prompt_text = spec.prompt(prompt)
    if not progress:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # loading and saving bars
    started = time.perf_counter()
    model = load_sentence_transformer(spec.path, trust_remote_code=spec.trust_remote_code)
    own_default, model.default_prompt_name = model.default_prompt_name, prompt_name  # what the dev evaluation encodes with
    evaluator = _evaluator(development) if development is not None else None
    before = evaluator(model) if evaluator is not None else None
    with tempfile.TemporaryDirectory(prefix="kbatch-train-") as checkpoints:
        parts = {task: (training, loss_name)} | ({"nli": (also, "mnrl")} if also is not None else {})
        trainer = _trainer(model, parts, evaluator, settings, checkpoints, progress, is_transformer(spec.path), prompt_text)
        trainer.train()
    after = evaluator(model) if evaluator is not None else None
    model.default_prompt_name = own_default
    card = {
        "kbatch_version": __version__,
        "task": task,
        "loss": loss_name,
        "base_model": spec.describe(),
        "prompt": {"name": prompt_name, "text": prompt_text} if prompt_text else None,
        "train": training.describe(),
        "nli": also.describe() if also is not None else None,
        "dev": development.describe() if development is not None else None,
        "settings": settings.__dict__ | {"loss": loss_name},
        "dev_before": _metrics(before),
        "dev_after": _metrics(after),
        "seconds": round(time.perf_counter() - started, 1),
        "device": str(model.device),
    }
    _save(model, Path(output), card)
    return card


def _evaluator(pairs: Pairs):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    frame = pairs.frame
    return EmbeddingSimilarityEvaluator(frame["sentence1"].tolist(), frame["sentence2"].tolist(),
                                        (frame["score"] / MAX_SCORE).tolist(), name="dev", show_progress_bar=False)


def _trainer(model, parts: dict[str, tuple[Pairs, str]], evaluator, settings: TrainSettings, checkpoints: str, progress: bool,
             transformer: bool, prompt: str):
    """sentence-transformers' trainer over ``model``, one dataset and loss per task in ``parts``; fp16 on a GPU for a
    transformer only: use-m3 runs in fp32 there (a row of it drifted to cosine 0.81 in fp16 on the H200, docs/decisions.md)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses

    kinds = {"cosine": losses.CosineSimilarityLoss, "cosent": losses.CoSENTLoss, "mnrl": losses.MultipleNegativesRankingLoss}
    data, loss = {}, {}
    for task, (pairs, loss_name) in parts.items():
        frame = pairs.frame.copy()
        if task == "sts":
            frame["score"] = frame["score"] / MAX_SCORE
        data[task], loss[task] = Dataset.from_pandas(frame, preserve_index=False), kinds[loss_name](model)
    gpu = torch.cuda.is_available()
    evaluate_each = "epoch" if evaluator is not None else "no"
    arguments = SentenceTransformerTrainingArguments(
        output_dir=checkpoints, num_train_epochs=settings.epochs, per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, seed=settings.seed, fp16=gpu and transformer, **_warmup(settings.warmup_ratio),
        eval_strategy=evaluate_each, save_strategy=evaluate_each, save_total_limit=1, load_best_model_at_end=evaluator is not None,
        metric_for_best_model="eval_dev_spearman_cosine" if evaluator is not None else None, greater_is_better=True,
        report_to="none", disable_tqdm=not progress, dataloader_num_workers=0, dataloader_pin_memory=gpu, logging_strategy="no",
        batch_sampler="no_duplicates" if "nli" in parts else "batch_sampler", prompts=prompt or None,
    )
    one = len(parts) == 1  # a single dataset and loss, as the trainer takes them unnamed
    trainer = SentenceTransformerTrainer(model=model, args=arguments, evaluator=evaluator,
                                         train_dataset=next(iter(data.values())) if one else data,
                                         loss=next(iter(loss.values())) if one else loss)
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # without a bar the trainer prints every log dict instead
    return trainer


def _warmup(ratio: float) -> dict:
    """Transformers 5 takes the warm-up share as a float ``warmup_steps``; 4 as ``warmup_ratio``."""
    import transformers

    return {"warmup_steps": ratio} if int(transformers.__version__.split(".")[0]) >= 5 else {"warmup_ratio": ratio}


def _metrics(found: dict | None) -> dict | None:
    if found is None:
        return None
    return {"spearman": round(100 * found["dev_spearman_cosine"], 2), "pearson": round(100 * found["dev_pearson_cosine"], 2)}


def _save(model, output: Path, card: dict) -> None:
    """The model directory, written beside ``output`` and renamed: a half-saved model never has its name."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        model.save(str(staging))
        (staging / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with open(staging / "README.md", "a", encoding="utf-8") as readme:
            readme.write(training_section(card))
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"cannot save the model to {output}: {exc.strerror or exc}") from None
