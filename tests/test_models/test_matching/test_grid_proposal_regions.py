"""SAMGridProposals' min_mask_region_area: SAM's generator's small-region post-processing."""
import torch

from mmsamantics.models.matching.sam_grid_proposals import Proposals, clean_regions


def _props(masks: torch.Tensor) -> Proposals:
    logits = torch.where(masks, 2.0, -3.0)
    n = len(masks)
    return Proposals(logits, masks, torch.ones(n), torch.ones(n), torch.zeros(n, 2))


def test_islands_and_holes_below_the_area_go_and_logits_follow():
    m = torch.zeros(1, 12, 12, dtype=torch.bool)
    m[0, 2:8, 2:8] = True  # the object, 36 px
    m[0, 4, 4] = False  # a 1-px hole
    m[0, 10, 10:12] = True  # a 2-px speck far away
    out = clean_regions(_props(m), area=4)
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[2:8, 2:8] = True
    assert torch.equal(out.masks[0], expected)
    assert out.logits[0, 10, 10] == -1.0 and out.logits[0, 4, 4] == 1.0  # flipped pixels
    assert out.logits[0, 3, 3] == 2.0 and out.logits[0, 0, 0] == -3.0  # the rest as before
    assert torch.equal(out.masks, out.logits > 0)


def test_a_mask_of_only_small_regions_keeps_its_largest():
    m = torch.zeros(1, 12, 12, dtype=torch.bool)
    m[0, 0:2, 0:2] = True  # 4 px
    m[0, 8:11, 8:11] = True  # 9 px
    out = clean_regions(_props(m), area=20)
    assert out.masks[0].sum() == 9 and out.masks[0, 9, 9]
