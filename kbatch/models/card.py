"""What a model card says of how the model was trained: written by ``kbatch train`` into the
model it saves, and again into every model built from a delta of it (``kbatch.use_m3.delta``)."""

from __future__ import annotations

import json


def training_section(card: dict) -> str:
    """The model card's account of a training run, from what ``kbatch train`` records in ``kbatch_training.json``."""
    before, after, also = card["dev_before"], card["dev_after"], card.get("nli")
    nli = f"- NLI pairs beside them (multiple-negatives ranking): {also['path']} ({also['rows']:,} rows)\n" if also else ""
    prompt = f", prompt {card['prompt']['text']!r} before every sentence" if card.get("prompt") else ""
    quality = (f"- Dev Spearman (× 100, cosine): {before['spearman']:.2f} before, {after['spearman']:.2f} after\n"
               if before and after else "")
    return (
        f"\n\n## Trained with kbatch {card['kbatch_version']}\n\n"
        f"- Task: {card['task']}, loss: {card['loss']}\n"
        f"- Base model: {card['base_model']['name']}{prompt}\n"
        f"- Training data: {card['train']['path']} ({card['train']['rows']:,} pairs, {card['train']['bad_rows']:,} bad rows left out)\n"
        f"{nli}"
        f"{quality}"
        f"- Settings: {json.dumps(card['settings'])}\n"
        f"- Time: {card['seconds']:.0f} s on {card['device']}\n"
    )
