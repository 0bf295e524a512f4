import torch

from mmsamantics.models import SAMImageEncoder, SAMPromptDecoder
from mmsamantics.models.sam.toy_pretrain import _dice, _focal, pretrain_toy_sam


def test_pretraining_writes_an_official_layout_checkpoint(toy_root, tmp_path):
    kw = dict(ann_file=f'{toy_root}/annotations/instances_train.json',
              img_dir=f'{toy_root}/train', epochs=2, batch_size=4, max_images=4, seed=3)
    r = pretrain_toy_sam(out_file=str(tmp_path / 'a.pth'), **kw)
    pretrain_toy_sam(out_file=str(tmp_path / 'b.pth'), **kw)
    assert r['images'] == 4 and 0.0 <= r['mean_iou'] <= 1.0
    a, b = torch.load(tmp_path / 'a.pth'), torch.load(tmp_path / 'b.pth')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # seeded
    assert {k.split('.')[0] for k in a} == {'image_encoder', 'prompt_encoder', 'mask_decoder'}
    # loads strictly into the modules the configs use, and changed the random init
    enc = SAMImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'a.pth'))
    dec = SAMPromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'a.pth'))
    torch.manual_seed(3)
    fresh = SAMImageEncoder(preset='tiny')
    assert not torch.equal(enc.encoder.neck[0].weight, fresh.encoder.neck[0].weight)
    assert not any(p.requires_grad for p in dec.parameters())


def test_losses_match_their_formulas():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    p = torch.sigmoid(logits)
    d = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    assert torch.allclose(_dice(logits, target), d[None])
    pt = torch.where(target > 0, p, 1 - p)
    a = torch.where(target > 0, torch.tensor(0.25), torch.tensor(0.75))
    f = (-a * (1 - pt) ** 2 * torch.log(pt)).mean()
    assert torch.allclose(_focal(logits, target), f[None], atol=1e-6)
