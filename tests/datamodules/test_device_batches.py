"""Image sets held on the device: batched augmentation equals its per-image definition, the order and
augmentation depend only on (seed, epoch, batch index), resume is exact, and the cnn DataModule serves the same
evaluation data either way."""

import pytest
import torch
import torch.nn.functional as F

from datamodules.cnn import ImageClassificationDM
from datamodules.device_batches import BatchAugment, DeviceImageBatches


def _images(n=10, c=3, h=6, w=5):
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_each_augmented_image_is_one_crop_of_its_padded_image_flipped_or_not(mode):
    images, padding = _images(), 2
    out = BatchAugment(padding=padding, pad_mode=mode, flip=True)(images, torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8 and out.shape == images.shape
    padded = F.pad(images.float(), (padding,) * 4, mode=mode).to(torch.uint8)
    seen_flip, seen_offsets = set(), set()
    for image, source in zip(out, padded, strict=True):
        matches = [
            (dy, dx, flipped)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            for flipped in (False, True)
            if torch.equal(
                image, (lambda crop: crop.flip(-1) if flipped else crop)(source[:, dy : dy + 6, dx : dx + 5])
            )
        ]
        assert matches, "not a crop of the padded image"
        seen_offsets.add(matches[0][:2])
        seen_flip.add(matches[0][2])
    assert seen_flip == {False, True} and len(seen_offsets) > 3  # really random over a batch of 10


def test_without_padding_or_flip_the_batch_is_unchanged():
    images = _images()
    assert torch.equal(BatchAugment()(images, torch.Generator().manual_seed(0)), images)


def _loader(**kwargs):
    images = _images(n=23)
    labels = torch.arange(23)
    options = dict(batch_size=4, shuffle=True, seed=3, drop_last=True, mean=(0.5,) * 3, std=(0.25,) * 3)
    return DeviceImageBatches(
        images, labels, **{**options, **kwargs}, augment=BatchAugment(padding=1, flip=True)
    )


def _epoch(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_batches_depend_on_seed_epoch_and_index_only_and_are_normalised():
    first, again = _epoch(_loader(), 0), _epoch(_loader(), 0)
    assert len(first) == 5 == len(_loader())  # 23 // 4 with drop_last
    for (x, y), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2) and x.dtype == torch.float32
    assert not torch.equal(_epoch(_loader(), 1)[0][1], first[0][1])  # a new epoch, a new order
    assert not torch.equal(_epoch(_loader(seed=4), 0)[0][1], first[0][1])
    pixels = torch.cat([x for x, _ in first])
    assert pixels.min() >= (0 - 0.5) / 0.25 and pixels.max() <= (1 - 0.5) / 0.25


@pytest.mark.parametrize("per_chunk", [16, 2, 1])
@pytest.mark.parametrize("seen", [1, 2, 3])
def test_resume_mid_epoch_yields_exactly_the_unseen_batches(monkeypatch, per_chunk, seen):
    """Batches are made `batches_per_chunk` at a time: resuming inside or at the edge of a chunk makes
    that chunk again and yields exactly the batches not seen yet."""
    monkeypatch.setattr(DeviceImageBatches, "batches_per_chunk", per_chunk)
    full = _epoch(_loader(), 2)
    interrupted = _loader()
    interrupted.sampler.set_epoch(2)
    iterator = iter(interrupted)
    for _ in range(seen):
        next(iterator)
    state = interrupted.state_dict()
    assert state == {"epoch": 2, "batches": seen}
    resumed = _loader()
    resumed.load_state_dict(state)
    rest = _epoch(resumed, 2)
    assert len(rest) == 5 - seen
    for (x, y), (x2, y2) in zip(rest, full[seen:], strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_batches_are_made_in_chunks_bounded_in_memory():
    assert _loader().batches_per_chunk == 16  # 4 tiny images per batch
    big = DeviceImageBatches(
        torch.zeros(8, 3, 512, 512, dtype=torch.uint8),
        torch.zeros(8, dtype=torch.long),
        batch_size=8,
        shuffle=False,
        seed=0,
        drop_last=False,
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
    )
    assert big.batches_per_chunk == 2  # 8 x 3 x 512 x 512 floats per batch, 2^24 at a time


def test_ranks_share_the_set_between_them(monkeypatch):
    import datamodules.loading as loading

    labels = []
    for rank in (0, 1):
        monkeypatch.setattr(loading, "_rank_and_world", lambda rank=rank: (rank, 2))
        labels.append(torch.cat([y for _, y in _epoch(_loader(drop_last=False, batch_size=5), 0)]))
    assert len(labels[0]) == len(labels[1]) == 12  # 23 padded to 24 by repeating one, 12 per rank
    assert set(labels[0].tolist()) | set(labels[1].tolist()) == set(range(23))
    assert len(set(labels[0].tolist()) & set(labels[1].tolist())) <= 1


@pytest.mark.parametrize("stage", ["val", "test"])
def test_the_datamodule_serves_the_same_evaluation_batches_on_the_device_and_per_image(stage):
    batches = {}
    for on_device in (True, False):
        datamodule = ImageClassificationDM("digits", batch_size=64, on_device=on_device)
        datamodule.setup("fit" if stage == "val" else "test")
        loader = datamodule.val_dataloader() if stage == "val" else datamodule.test_dataloader()
        batches[on_device] = list(loader)
    assert len(batches[True]) == len(batches[False])
    for (x, y), (x2, y2) in zip(batches[True], batches[False], strict=True):
        assert torch.equal(y, y2)
        torch.testing.assert_close(x, x2, rtol=0, atol=1e-6)  # the same pixels, normalised the same way


def test_an_image_folder_cannot_be_held_on_the_device():
    from training.toolkit.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match="data.on_device=false"):
        ImageClassificationDM("image_folder", on_device=True, image_folder={"train": "/nowhere"})
