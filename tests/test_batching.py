import numpy as np
import pytest

from kbatch.models.batching import OutOfMemory, encode_ragged, pad_batch, plan_batches


def ragged(rows):
    flat = np.array([i for row in rows for i in row], dtype=np.int32)
    offsets = np.cumsum([0] + [len(r) for r in rows])
    return flat, offsets


def test_batches_respect_the_token_budget_and_cover_every_row():
    lengths = np.array([5, 1, 9, 3, 3, 7, 2])
    batches = list(plan_batches(lengths, token_budget=10, max_rows=100))
    for rows in batches:
        assert len(rows) == 1 or len(rows) * lengths[rows].max() <= 10
    assert sorted(np.concatenate(batches)) == list(range(len(lengths)))
    assert lengths[batches[0][0]] == 9  # longest first


def test_padding_is_built_from_offsets():
    flat, offsets = ragged([[1, 2, 3], [4], [5, 6]])
    ids, mask = pad_batch(flat, offsets, np.array([2, 1]), pad_id=0)
    assert ids.tolist() == [[5, 6], [4, 0]]
    assert mask.tolist() == [[1, 1], [1, 0]]


def sum_forward(ids, mask):
    return (ids * mask).sum(axis=1, keepdims=True).astype(np.float32)


def test_rows_come_back_in_input_order():
    rows = [[3, 1], [7], [1, 1, 1, 1], [2, 2, 2]]
    flat, offsets = ragged(rows)
    out = encode_ragged(sum_forward, flat, offsets, 1, token_budget=4, max_rows=8)
    assert out[:, 0].tolist() == [4, 7, 4, 6]


def test_out_of_memory_halves_the_budget_and_finishes():
    rows = [[1] * 4 for _ in range(16)]
    flat, offsets = ragged(rows)
    budgets = []

    def small_device(ids, mask):
        if ids.size > 16:
            raise OutOfMemory("too big")
        return sum_forward(ids, mask)

    out = encode_ragged(small_device, flat, offsets, 1, token_budget=64, max_rows=64, on_halve=budgets.append)
    assert out[:, 0].tolist() == [4] * 16
    assert budgets == [32, 16]


def test_a_single_row_that_does_not_fit_is_an_error():
    flat, offsets = ragged([[1] * 8])

    def never_fits(ids, mask):
        raise OutOfMemory("too big")

    with pytest.raises(OutOfMemory):
        encode_ragged(never_fits, flat, offsets, 1, token_budget=64, max_rows=64)
