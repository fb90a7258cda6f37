"""SentencePiece tokenization with the C++ library, in the shape kbatch's stages expect.

USE-m3 frames every text as ``<s> pieces </s>``; a text that normalizes to nothing is
one unknown piece. The C++ library merges a run of unknown characters (ㅋㅋㅋ, most
emoji) into one unknown piece; the reference encoder gives each character its own, and
its vectors are the ones to reproduce, so runs are split again (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Sequence

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SENTENCEPIECE_FILE = "sentencepiece.model"
# The class name of USE-m3's first module, which the subword stage recognizes without importing torch.
EMBEDDING_MODULE = "UseM3Embedding"
# The 8-bit piece table is quantized in this many interleaved chunks (row r: chunk r % 17).
QUANTIZATION_CHUNKS = 17


class SentencePieceTokenizer:
    """Texts to piece ids with ``<s>``/``</s>`` added, cut to ``max_length`` ids."""

    model_input_names = ("input_ids", "attention_mask")
    pad_token_id = UNK_ID  # padded positions are masked; any id will do
    unk_token_id = UNK_ID

    def __init__(self, model_file: str, max_length: int = 512) -> None:
        import sentencepiece

        self.model_file = model_file
        self.max_length = max_length
        self.processor = sentencepiece.SentencePieceProcessor(model_file=model_file)

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    def encode_batch(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Ids per text and whether each was cut to ``max_length``."""
        texts = list(texts)
        pieces = self.processor.encode(texts, out_type=int)
        for row, ids in enumerate(pieces):
            if UNK_ID in ids:
                pieces[row] = self._unknown_per_character(texts[row], ids)
        room = self.max_length - 2
        ids = [[BOS_ID, *(p[:room] if p else [UNK_ID]), EOS_ID] for p in pieces]
        return ids, [len(p) > room for p in pieces]

    def _unknown_per_character(self, text: str, ids: list[int]) -> list[int]:
        """``ids`` with each unknown piece repeated once per character it covers."""
        surfaces = self.processor.encode(text, out_type=str)
        return [i for i, surface in zip(ids, surfaces, strict=True) for _ in range(len(surface) if i == UNK_ID else 1)]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.processor.id_to_piece(int(i)) for i in ids]
