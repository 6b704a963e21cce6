"""Training crops are cut from the stored pixels and only the patch is converted to float, with the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from laformer.data.datasets import planes_to_tensor


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_float_of_a_crop_is_the_crop_of_the_float_frame(dtype, channels) -> None:
    rng = np.random.default_rng(1)
    for shape in ((37, 53, 3), (37, 53)):
        frame = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
        window = (slice(5, 21), slice(11, 27))
        whole = planes_to_tensor([frame], channels)[..., window[0], window[1]]
        assert torch.equal(planes_to_tensor([frame[window]], channels), whole)
