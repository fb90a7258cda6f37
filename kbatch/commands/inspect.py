"""``kbatch inspect``: what kbatch and a model make of one text, before trusting them on a corpus.

>>> report = inspect_text("아버지가방에들어가신다")
>>> report.morphemes[:2]
[('아버지', 'NNG'), ('가', 'JKS')]
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kbatch.analyzers import DEFAULT_ANALYZER, AnalyzerSpec, load_analyzer
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.stages import MorphAnalyze, NormalizeText
from kbatch.stages.subword import load_tokenizer


@dataclass(frozen=True)
class Inspection:
    text: str
    normalized: str | None
    analyzer: str
    morphemes: list[tuple[str, str]]
    model: str
    subwords: list[str]
    ids: list[int]
    max_seq_length: int
    unknown: int
    prompt_name: str | None = None
    prompt: str = ""  # put before the text: the subwords and ids include it, as the model sees them

    @property
    def unknown_share(self) -> float:
        return self.unknown / len(self.subwords) if self.subwords else 0.0

    def format(self) -> str:
        """The report a person reads: one labelled line per finding."""
        n = len(self.subwords)
        fits = "fits" if n <= self.max_seq_length else f"TRUNCATED: the last {n - self.max_seq_length} are dropped"
        chars = len(self.normalized or "")
        lines = [
            f"text        {self.text!r}",
            f"normalized  {self.normalized!r}" + ("" if self.normalized else "  (nothing left to analyze: this row is skipped)"),
            f"morphemes   ({self.analyzer}) " + " ".join(f"{form}/{tag}" for form, tag in self.morphemes),
            f"prompt      {self.prompt!r} ({self.prompt_name})" if self.prompt else "prompt      none",
            f"subwords    ({self.model}) " + " ".join(self.subwords),
            f"ids         {self.ids}",
            f"length      {n} tokens of at most {self.max_seq_length} ({fits}); {n / chars if chars else 0:.2f} tokens per character",
            f"unknown     {self.unknown} of {n} tokens ({self.unknown_share:.1%}) are the model's unknown token",
        ]
        return "\n".join(lines)


def inspect_text(
    text: str, analyzer: AnalyzerSpec | str = DEFAULT_ANALYZER, model: str = DEFAULT_MODEL, *, trust_remote_code: bool = False,
    prompt: str | None = None,
) -> Inspection:
    """Normalize ``text``, analyze it and tokenize it for ``model`` after its ``prompt`` (None:
    the model's default, ``"none"``: no prompt), in this process."""
    spec = analyzer if isinstance(analyzer, AnalyzerSpec) else AnalyzerSpec(analyzer, threads=1)
    spec.check()
    frame = NormalizeText()(pd.DataFrame({"id": [0], "text": pd.Series([text], dtype=object)}))
    normalized = frame["text"].iloc[0] if pd.isna(frame["skip_reason"].iloc[0]) else None
    morphemes: list[tuple[str, str]] = []
    if normalized:
        load_analyzer(spec)
        analyzed = MorphAnalyze(spec)(frame)
        morphemes = list(zip(analyzed["tokens"].iloc[0], analyzed["tags"].iloc[0], strict=True))
    model_spec = resolve_model(model, trust_remote_code=trust_remote_code)
    prompt_name, prompt_text = model_spec.prompt(prompt)
    tokenizer = load_tokenizer(model_spec.path, 1 << 30)  # uncut: the report says what the model would drop
    ids = tokenizer.encode_batch([prompt_text + (normalized or "")])[0][0]
    return Inspection(
        text=text,
        normalized=normalized,
        analyzer=spec.name,
        morphemes=morphemes,
        model=model_spec.name,
        subwords=tokenizer.convert_ids_to_tokens(ids),
        ids=ids,
        max_seq_length=model_spec.max_seq_length,
        unknown=sum(1 for i in ids if i == tokenizer.unk_token_id),
        prompt_name=prompt_name,
        prompt=prompt_text,
    )
