import numpy as np
import pytest
import torch

from sswp.data.loaders import make_loader
from sswp.data.transforms import Cutout, eval_view, train_view
from sswp.errors import SswpError

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def labels():
    return np.arange(30, dtype=np.int64) % 5


def _loader(images, labels, kind, batch_size=8, indices=None, **overrides):
    options = dict(mean=MEAN, std=STD, shuffle=True, drop_last=True, seed=3, name="search weights")
    options.update(overrides)
    indices = np.arange(20) if indices is None else indices
    return make_loader(images, labels, indices, kind, batch_size, **options)


def test_simclr_batches(images, labels):
    batches = list(_loader(images, labels, "simclr"))
    assert len(batches) == 2
    view1, view2, y = batches[0]
    assert view1.shape == view2.shape == (8, 3, 32, 32)
    assert view1.dtype == view2.dtype == torch.float32
    assert y.dtype == torch.int64 and y.shape == (8,)
    assert not torch.equal(view1, view2)


@pytest.mark.parametrize("kind", ["train", "eval"])
def test_supervised_batches(images, labels, kind):
    loader = _loader(images, labels, kind, cutout=8, drop_last=False)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [8, 8, 4]
    x, y = batches[0]
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == sorted(labels[:20].tolist())


def test_same_seed_same_batches(images, labels):
    def first_batch(seed):
        torch.manual_seed(0)
        return next(iter(_loader(images, labels, "simclr", seed=seed)))

    a, b = first_batch(3), first_batch(3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[2], first_batch(4)[2])


def test_worker_processes_are_seeded_from_the_loader(images, labels):
    def first_batch(global_seed):
        torch.manual_seed(global_seed)
        return next(iter(_loader(images, labels, "train", cutout=8, workers=1)))

    a, b = first_batch(0), first_batch(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_eval_is_unaugmented(images, labels):
    indices = np.array([4, 9, 2, 17])
    loader = _loader(images, labels, "eval", indices=indices, shuffle=False, drop_last=False)
    x, y = next(iter(loader))
    raw = torch.from_numpy(images[indices]).permute(0, 3, 1, 2).float() / 255
    expected = (raw - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    assert torch.allclose(x, expected, atol=1e-6)
    assert y.tolist() == labels[indices].tolist()


def test_batch_larger_than_split_rejected(images, labels):
    with pytest.raises(
        SswpError,
        match="batch size 64 is larger than the 20 images of the search weights split; "
        "lower search.batch_size to at most 20",
    ):
        _loader(images, labels, "simclr", batch_size=64, batch_key="search.batch_size")
    assert len(_loader(images, labels, "eval", batch_size=64, drop_last=False)) == 1


def test_empty_split_rejected(images, labels):
    with pytest.raises(SswpError, match="search weights split has no images"):
        _loader(images, labels, "eval", indices=np.array([], dtype=np.int64))


def test_cutout_zeroes_a_clipped_square():
    torch.manual_seed(0)
    cutout = Cutout(8)
    full_squares = 0
    for _ in range(50):
        out = cutout(torch.ones(3, 32, 32))
        zero = out[0] == 0
        assert torch.equal(zero, out[2] == 0)  # same square in every channel
        rows, cols = zero.any(dim=1).nonzero(), zero.any(dim=0).nonzero()
        assert zero.sum() == len(rows) * len(cols)  # a rectangle
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8
        full_squares += int(zero.sum()) == 64
    assert full_squares > 0


def test_train_view_uses_cutout_only_when_asked():
    image = torch.full((3, 32, 32), 200, dtype=torch.uint8)
    torch.manual_seed(0)
    without = train_view(32, (0, 0, 0), (1, 1, 1), cutout=0)(image)
    assert without.shape == (3, 32, 32) and without.dtype == torch.float32
    assert not any(isinstance(t, Cutout) for t in train_view(32, MEAN, STD, 0).transforms)
    assert isinstance(train_view(32, MEAN, STD, 16).transforms[-1], Cutout)
    assert torch.allclose(
        eval_view((0, 0, 0), (1, 1, 1))(image), torch.full((3, 32, 32), 200 / 255)
    )
