import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sswp.data.loaders import LoaderContext, make_loader
from sswp.data.torch_loader import ImageSet, TorchLoader
from sswp.data.transforms import Cutout, eval_view, simclr_view, train_view
from sswp.errors import SswpError

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
# make_loader's own arguments; the rest of a test's options go to its LoaderContext.
LOADER_ARGUMENTS = ("name", "shuffle", "drop_last", "cutout")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def labels():
    return np.arange(30, dtype=np.int64) % 5


def _loader(images, labels, kind, batch_size=8, indices=None, **overrides):
    options = dict(shuffle=True, drop_last=True, name="search weights")
    options |= {key: overrides.pop(key) for key in LOADER_ARGUMENTS if key in overrides}
    context = LoaderContext(
        **{"mean": MEAN, "std": STD, "seed": 3, **overrides}, batch_size=batch_size
    )
    indices = np.arange(20) if indices is None else indices
    return make_loader(images, labels, indices, kind, context, **options)


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


@pytest.mark.parametrize(
    ("kind", "shuffle", "drop_last", "workers"),
    [
        ("simclr", True, True, 0),
        ("train", True, False, 0),
        ("eval", False, False, 0),
        ("train", True, True, 1),
    ],
)
def test_torch_backend_matches_a_seeded_dataloader_bit_for_bit(
    images, labels, kind, shuffle, drop_last, workers
):
    """Earlier results stay reproducible: same order, same augmentations, epoch after epoch."""
    transform = {
        "simclr": simclr_view(32, MEAN, STD),
        "train": train_view(32, MEAN, STD, 8),
        "eval": eval_view(MEAN, STD),
    }[kind]
    indices = np.arange(3, 28)
    reference = DataLoader(
        ImageSet(images, labels, indices, transform, two_views=kind == "simclr"),
        batch_size=8,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=workers,
        generator=torch.Generator().manual_seed(3),
    )
    ours = _loader(
        images,
        labels,
        kind,
        indices=indices,
        cutout=8,
        workers=workers,
        shuffle=shuffle,
        drop_last=drop_last,
    )
    torch.manual_seed(7)
    expected = [batch for _ in range(3) for batch in reference]
    torch.manual_seed(7)
    found = [batch for _ in range(3) for batch in ours]
    assert len(found) == len(expected) == 3 * len(ours)
    for a, b in zip(expected, found, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_set_epoch_replays_that_epoch(images, labels, backend):
    loader = _loader(images, labels, "eval", indices=np.arange(30), loader=backend)
    epochs = [torch.cat([y for _, y in loader]) for _ in range(3)]
    assert not torch.equal(epochs[1], epochs[2])
    fresh = _loader(images, labels, "eval", indices=np.arange(30), loader=backend)
    fresh.set_epoch(2)
    assert torch.equal(torch.cat([y for _, y in fresh]), epochs[2])
    fresh.set_epoch(1)
    assert torch.equal(torch.cat([y for _, y in fresh]), epochs[1])


@pytest.mark.parametrize(("count", "drop_last"), [(30, True), (29, False), (29, True)])
def test_shards_are_disjoint_equal_and_cover_the_epoch(backend, count, drop_last):
    images = np.zeros((count, 8, 8, 3), np.uint8)
    positions = np.arange(count, dtype=np.int64)  # labels name the image each batch holds
    shards = [
        make_loader(
            images,
            positions,
            positions,
            "eval",
            LoaderContext(4, MEAN, STD, seed=1, loader=backend, shard_id=shard, num_shards=2),
            name="test",
            shuffle=True,
            drop_last=drop_last,
        )
        for shard in range(2)
    ]
    for _ in range(2):  # each epoch reshuffles, the same way for both shards
        seen = [torch.cat([y for _, y in shard]).tolist() for shard in shards]
        assert len(seen[0]) == len(seen[1]) == len(shards[0]) * 4 - (0 if drop_last else 2)
        assert not set(seen[0]) & set(seen[1])
        covered = len(seen[0]) + len(seen[1])
        assert covered == (count // 2 // 4 * 4 * 2 if drop_last else count // 2 * 2)
    assert seen[0] != sorted(seen[0])


def test_shard_too_large_for_the_batch_is_named(images, labels):
    with pytest.raises(
        SswpError,
        match="larger than the 10 images per shard of the search "
        "weights split; lower batch_size to at most 10",
    ):
        _loader(images, labels, "train", batch_size=16, shard_id=1, num_shards=2)
    with pytest.raises(ValueError, match="shard_id < num_shards"):
        _loader(images, labels, "train", shard_id=2, num_shards=2)


def test_auto_takes_dali_when_it_imports(images, labels):
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    from sswp.data.dali_loader import DaliLoader

    loader = _loader(images, labels, "eval", loader="auto", device=torch.device("cpu"))
    assert isinstance(loader, DaliLoader) and not loader.backend.gpu
    x, y = next(iter(loader))
    assert x.device.type == "cpu" and y.dtype == torch.int64


def test_without_dali_auto_falls_back_and_dali_says_how_to_install(images, labels, monkeypatch):
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # `import nvidia.dali` now fails
    loader = _loader(images, labels, "eval", loader="auto")
    assert isinstance(loader, TorchLoader)
    assert next(iter(loader))[0].shape == (8, 3, 32, 32)
    with pytest.raises(SswpError, match=r"pip install nvidia-dali-cuda130.*data.loader: torch"):
        _loader(images, labels, "eval", loader="dali")


def test_unknown_loader_and_image_size_mismatch_rejected(images, labels):
    with pytest.raises(SswpError, match="data.loader = 'fast' is unknown"):
        _loader(images, labels, "eval", loader="fast")
    with pytest.raises(ValueError, match="image_size 24 differs"):
        _loader(images, labels, "eval", image_size=24)
    assert len(_loader(images, labels, "eval", image_size=32)) == 2
    with pytest.raises(ValueError, match="image files need image_size"):
        _loader(np.array(["a.png"] * 30), labels, "eval")
