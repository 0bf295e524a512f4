"""merge_pairs: the authors' per-pair cap in oracle mode, a per-image cap in open mode."""
import torch
from mmengine.structures import InstanceData

from mmsamantics.models.detectors.insam_detr_pairs import ReferencePairs, merge_pairs


def _pair_results(n, offset):
    """n detections whose scores are offset + 0, 1, ..., n-1 (in shuffled order)."""
    scores = offset + torch.randperm(n, generator=torch.Generator().manual_seed(offset)).float()
    return InstanceData(bboxes=torch.rand(n, 4), scores=scores,
                        labels=torch.zeros(n, dtype=torch.long))


def _two_classes_on_one_image(n=150):
    # image 0 holds classes 3 and 7; class 7 scores above class 3 everywhere; image 1 none
    per_pair = [_pair_results(n, 0), _pair_results(n, 1000)]
    pairs = ReferencePairs(torch.tensor([0, 0]), torch.tensor([3, 7]), torch.zeros(2, 8))
    return per_pair, pairs


def test_oracle_keeps_100_per_pair():
    per_pair, pairs = _two_classes_on_one_image()
    res, empty = merge_pairs(per_pair, pairs, 2, torch.zeros(1), max_per_pair=100)
    assert len(res) == 200 and len(empty) == 0  # 2 classes x 100, no per-image cut
    for label, offset in ((3, 0), (7, 1000)):
        kept = res.scores[res.labels == label]
        # the 100 best of the pair's 150: scores offset + 50 ... offset + 149
        assert sorted(kept.tolist()) == [offset + s for s in range(50, 150)]
    assert torch.all(res.scores[:-1] >= res.scores[1:])


def test_open_cuts_per_image_after_merging():
    per_pair, pairs = _two_classes_on_one_image()
    res = merge_pairs(per_pair, pairs, 1, torch.zeros(1), max_per_pair=100, max_per_img=100)[0]
    # class 7's 100 kept detections all outscore class 3's
    assert len(res) == 100 and set(res.labels.tolist()) == {7}
    assert sorted(res.scores.tolist()) == [1000 + s for s in range(50, 150)]
