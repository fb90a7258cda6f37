"""The sentence encoder a worker keeps loaded: the model's own modules, minus Normalize.

Token embeddings come from the model's transformer (torch), or from an int8 ONNX export
of it when ``quantize="int8"``; pooling and any dense layers always run through the
model's own sentence-transformers modules, so its configuration decides the pooling.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kbatch.caches import worker_cache
from kbatch.errors import ModelError
from kbatch.models.batching import OutOfMemory
from kbatch.models.resolve import cache_dir, load_sentence_transformer

POOLING_MODES = ("mean", "cls", "max")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# Tokens per forward pass on CPU: measured best on 2 cores (docs/decisions.md).
CPU_TOKEN_BUDGET = 1024
CPU_MAX_ROWS = 256
# On a GPU: a share of the free memory for one batch's activations, at an estimated
# ``hidden size x layers x ACTIVATION_WIDTH`` values per token, within these bounds.
GPU_MEMORY_SHARE = 0.25
ACTIVATION_WIDTH = 16
GPU_TOKEN_BUDGET_BOUNDS = (4_096, 262_144)
GPU_MAX_ROWS = 2_048


@dataclass(frozen=True)
class EncoderSettings:
    """Everything that decides how a worker loads the encoder (hashable: the cache key)."""

    model_path: str
    pooling: str | None = None
    onnx_path: str | None = None
    torch_threads: int | None = None
    device: str | None = None
    precision: str = "fp32"  # fp32, fp16 or bf16 (resolved: never "auto" here)
    trust_remote_code: bool = False  # the client's decision (ModelSpec.trust_remote_code)


class SentenceEncoder:
    """Padded ids and mask in, one float32 vector per row out (not normalized)."""

    def __init__(self, settings: EncoderSettings) -> None:
        import torch

        from kbatch.models.st_modules import Normalize, Pooling

        self.threads = settings.torch_threads
        device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_sentence_transformer(settings.model_path, device, settings.trust_remote_code)
        model.eval()
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(settings.precision)
        if dtype is not None:
            model.to(dtype)
        self.device = device
        self.dimension = model.get_embedding_dimension()
        self.uses_token_types = "token_type_ids" in model.tokenizer.model_input_names
        self.pad_id = model.tokenizer.pad_token_id or 0
        modules = list(model)
        self.transformer = modules[0]
        head = [m for m in modules[1:] if not isinstance(m, Normalize)]
        if settings.pooling:
            head = [Pooling(self.dimension, pooling_mode=settings.pooling) if isinstance(m, Pooling) else m for m in head]
        self.head = torch.nn.Sequential(*head).to(device)
        pooling = next((m for m in head if isinstance(m, Pooling)), None)
        self.pooling = pooling.get_config_dict().get("pooling_mode") if pooling is not None else "none"
        self.session = _onnx_session(settings.onnx_path, settings.torch_threads) if settings.onnx_path else None

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        if self.threads and torch.get_num_threads() != self.threads:
            # OpenMP keeps the thread count per calling thread, and Dask may run a later
            # task on another executor thread than the one that loaded the model.
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                features = {"input_ids": self._to_device(ids), "attention_mask": self._to_device(mask)}
                if self.uses_token_types:
                    features["token_type_ids"] = torch.zeros_like(features["input_ids"])
                if self.session is None:
                    features = self.transformer(features)
                else:
                    hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                    features["token_embeddings"] = torch.from_numpy(hidden).to(self.device)
                return self.head(features)["sentence_embedding"].float().cpu().numpy()
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise OutOfMemory(f"batch of {ids.shape[0]} x {ids.shape[1]} tokens did not fit") from None


    def _to_device(self, array: np.ndarray):
        """On a GPU through pinned host memory, so the copy overlaps the previous batch's work."""
        import torch

        tensor = torch.from_numpy(array)
        if self.device == "cpu":
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def batch_limits(self) -> tuple[int, int]:
        """Tokens and rows per forward pass: measured constants on CPU; on a GPU, sized from
        its free memory and the model's width and depth (the out-of-memory halving is the net)."""
        if self.device == "cpu":
            return CPU_TOKEN_BUDGET, CPU_MAX_ROWS
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(self.device))
        config = getattr(getattr(self.transformer, "auto_model", None), "config", None)
        width = getattr(config, "hidden_size", 1024) * getattr(config, "num_hidden_layers", 24) * ACTIVATION_WIDTH
        per_token = width * next(self.transformer.parameters()).element_size()
        low, high = GPU_TOKEN_BUDGET_BOUNDS
        return int(min(high, max(low, free * GPU_MEMORY_SHARE / per_token))), GPU_MAX_ROWS



@worker_cache(2)
def load_encoder(settings: EncoderSettings) -> SentenceEncoder:
    """One encoder per worker process and settings, kept between tasks."""
    return SentenceEncoder(settings)


def _onnx_session(path: str, threads: int | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def int8_model_path(model_path: str, model_fingerprint: str, trust_remote_code: bool = False) -> str:
    """Path of the int8 ONNX export of a model, exporting it once per machine.

    Dynamic int8 with per-channel weights, and only MatMuls against constant weights
    quantized: quantizing the attention products as well cost up to 0.27 in cosine.
    """
    cache = cache_dir() / "onnx"
    target = cache / f"{model_fingerprint}-int8.onnx"
    if target.is_file():
        return str(target)
    try:
        import onnxruntime.quantization as quantization
    except ImportError:
        raise ModelError("`quantize` int8 needs onnx and onnxruntime: pip install 'kbatch[quantize]'") from None
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        _export_transformer(model_path, fp32, trust_remote_code)
        int8 = Path(tmp) / target.name
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs advice for image models on the root logger
        try:
            quantization.quantize_dynamic(
                fp32,
                int8,
                weight_type=quantization.QuantType.QInt8,
                per_channel=True,
                extra_options={"MatMulConstBOnly": True},
            )
        finally:
            root.setLevel(level)
        os.replace(int8, target)
    return str(target)


def _export_transformer(model_path: str, target: Path, trust_remote_code: bool) -> None:
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_sentence_transformer(model_path, "cpu", trust_remote_code)
        example = torch.ones(2, 8, dtype=torch.long)
        axes = {0: "batch", 1: "tokens"}
        torch.onnx.export(
            LastHiddenState(model[0].auto_model).eval(),
            (example, example),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
