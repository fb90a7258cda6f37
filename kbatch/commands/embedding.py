"""How a command embeds text: the settings every embedding command shares, checked in the
client, turned into an :class:`~kbatch.stages.Embed` on the cluster it runs on."""

from __future__ import annotations

from dataclasses import dataclass

from kbatch.engine.cluster import Cluster
from kbatch.errors import InputError, ModelError
from kbatch.models.encoders import POOLING_MODES, PRECISIONS, EncoderSettings, int8_model_path
from kbatch.models.resolve import ModelSpec, is_transformer
from kbatch.stages import Embed, Encode, SubwordTokenize
from kbatch.stages.encode import DTYPES
from kbatch.vectors.cache import EmbeddingCache


@dataclass(frozen=True)
class Embedding:
    """A resolved model and how its vectors are made. ``precision`` ``auto`` is fp16 when a
    transformer encodes on GPU workers, else fp32. ``prompt`` names one of the model's prompts
    (None: its default, ``"none"``: no prompt), put before every text."""

    spec: ModelSpec
    pooling: str | None = None
    normalize: bool = True
    dtype: str = "float32"
    quantize: str | None = None
    token_budget: int | None = None
    precision: str = "auto"
    prompt: str | None = None

    def __post_init__(self) -> None:
        self.spec.prompt(self.prompt)  # an unknown name: refused here, in the client
        if self.dtype not in DTYPES:
            raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise InputError(f"--pooling must be one of {', '.join(POOLING_MODES)}, got {self.pooling!r}")
        if self.quantize not in (None, "int8"):
            raise InputError(f"--quantize supports only int8, got {self.quantize!r}")
        if self.token_budget is not None and self.token_budget < 1:
            raise InputError(f"--token-budget must be positive, got {self.token_budget}")
        if self.precision not in PRECISIONS:
            raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.quantize and self.precision not in ("auto", "fp32"):
            raise InputError("--quantize int8 runs its own int8 model: leave --precision at auto or fp32")

    @property
    def prompt_text(self) -> str:
        return self.spec.prompt(self.prompt)[1]

    def params(self) -> dict:
        """What makes two sets of vectors comparable (part of every params key): the prompt's
        text, not its name, and only where there is one, so vectors made without stay as they were."""
        return {"model": self.spec.fingerprint, "pooling": self.pooling, "normalize": self.normalize, "dtype": self.dtype,
                "quantize": self.quantize, **({"prompt": self.prompt_text} if self.prompt_text else {})}

    def describe_model(self) -> dict:
        """The model as the manifest names it, with the prompt it was given."""
        name, text = self.spec.prompt(self.prompt)
        return {**self.spec.describe(), **({"prompt": {"name": name, "text": text}} if text else {})}

    def precision_on(self, cluster: Cluster) -> str:
        """``auto`` is fp16 when a transformer encodes on GPU workers, else fp32; others as given.

        On an H200, fp16 kept all-MiniLM-L6-v2 within 0.99999 cosine of fp32 but left a row of
        use-m3's output at 0.81 (docs/decisions.md), so the CNN stays fp32 unless asked.
        """
        if self.precision != "auto":
            return self.precision
        return "fp16" if cluster.routing.has_gpus and is_transformer(self.spec.path) else "fp32"

    def stage(self, cluster: Cluster, cache: EmbeddingCache | None = None, normalize_text: bool = True) -> Embed:
        """The Embed stage on this cluster (exporting the int8 model on a worker first if asked)."""
        onnx_path = None
        if self.quantize == "int8":
            if not is_transformer(self.spec.path):
                raise ModelError(f"--quantize int8 exports a transformer to ONNX; {self.spec.name} is not one "
                                 "(it is fast on CPU as it is)")
            exported = cluster.client.submit(int8_model_path, self.spec.path, self.spec.fingerprint, self.spec.trust_remote_code,
                                             resources=cluster.routing.gpu, pure=False)
            onnx_path = exported.result()
        settings = EncoderSettings(self.spec.path, self.pooling, onnx_path, cluster.routing.torch_threads,
                                   precision=self.precision_on(cluster), trust_remote_code=self.spec.trust_remote_code)
        encode = Encode(settings, token_budget=self.token_budget, normalize=self.normalize, dtype=self.dtype, cache=cache,
                        model_name=self.spec.name)
        return Embed(SubwordTokenize.for_model(self.spec, self.prompt_text), encode, normalize_text)


def check_prompts(spec: ModelSpec, *names: str | None) -> None:
    """Refuse, in the client before any cluster starts, a prompt name ``spec`` does not have
    (None, the model's default, and ``"none"`` always pass)."""
    for name in names:
        spec.prompt(name)
