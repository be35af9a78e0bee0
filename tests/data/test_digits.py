import numpy as np
import pytest

from sswp.data.digits import load_digits_dataset


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def test_shapes_and_types(digits):
    assert digits.train_x.shape[1:] == (32, 32, 3)
    assert digits.test_x.shape[1:] == (32, 32, 3)
    assert digits.train_x.dtype == np.uint8 and digits.test_x.dtype == np.uint8
    assert digits.train_y.dtype == np.int64 and digits.test_y.dtype == np.int64
    assert len(digits.train_y) + len(digits.test_y) == 1797
    assert len(digits.test_y) == pytest.approx(0.2 * 1797, abs=1)
    assert digits.classes == tuple(str(c) for c in range(10))
    assert digits.num_classes == 10
    assert digits.name == "digits"
    assert digits.problem() is None


def test_uses_full_range_and_grey_channels(digits):
    assert digits.train_x.max() == 255 and digits.train_x.min() == 0
    assert np.array_equal(digits.train_x[..., 0], digits.train_x[..., 2])


def test_stratified(digits):
    train_counts = np.bincount(digits.train_y, minlength=10)
    test_counts = np.bincount(digits.test_y, minlength=10)
    assert (test_counts > 0).all() and (train_counts > 0).all()
    fractions = test_counts / (train_counts + test_counts)
    assert np.allclose(fractions, 0.2, atol=0.02)


def test_split_is_fixed(digits):
    again = load_digits_dataset()
    for key, array in digits.arrays().items():
        assert np.array_equal(array, getattr(again, key)), key


def test_image_size_is_a_parameter(digits):
    small = load_digits_dataset(16)
    assert small.train_x.shape[1:] == (16, 16, 3) and small.image_size == 16
    assert np.array_equal(small.train_y, digits.train_y)
    # The same digits at another size: the mean brightness hardly moves.
    assert abs(small.train_x.mean() - digits.train_x.mean()) < 2
