import torch

from helpers import scrambled_class_ids
from mmsamantics.models import SAMImageEncoder, SAMPromptDecoder
from mmsamantics_toy.pretraining import pretrain_sam_encoder_mae, pretrain_toy_sam
from mmsamantics_toy.pretraining.promptable_sam import class_agnostic_coco, dice_loss, focal_loss


def test_pretraining_writes_an_official_layout_checkpoint(toy_root, tmp_path):
    kw = dict(ann_file=f'{toy_root}/annotations/instances_train.json',
              img_dir=f'{toy_root}/train', epochs=2, batch_size=4, max_images=4, seed=3)
    pretrain_toy_sam(out_file=str(tmp_path / 'a.pth'), **kw)
    pretrain_toy_sam(out_file=str(tmp_path / 'b.pth'), **kw)
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


def test_class_ids_cannot_reach_the_training(toy_root, tmp_path):
    """Same images and masks with scrambled class ids -> bit-identical weights."""
    ann = f'{toy_root}/annotations/instances_train.json'
    scrambled = scrambled_class_ids(ann, tmp_path)
    coco = class_agnostic_coco(str(scrambled))
    assert {a['category_id'] for a in coco.dataset['annotations']} == {1}
    kw = dict(img_dir=f'{toy_root}/train', epochs=1, batch_size=2, max_images=2, seed=1)
    pretrain_toy_sam(ann, out_file=str(tmp_path / 'a.pth'), **kw)
    pretrain_toy_sam(str(scrambled), out_file=str(tmp_path / 'b.pth'), **kw)
    a, b = torch.load(tmp_path / 'a.pth'), torch.load(tmp_path / 'b.pth')
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_promptable_stage_starts_from_the_mae_encoder(toy_root, tmp_path):
    mae = tmp_path / 'mae.pth'
    pretrain_sam_encoder_mae(f'{toy_root}/train', str(mae), epochs=1, batch_size=2,
                             max_images=2, seed=0)
    state = torch.load(mae)
    assert all(k.startswith('image_encoder.') for k in state)
    enc = SAMImageEncoder(preset='tiny', checkpoint=str(mae))  # official layout, strict
    assert torch.equal(enc.encoder.blocks[0].attn.qkv.weight,
                       state['image_encoder.blocks.0.attn.qkv.weight'])
    # zero promptable epochs' worth of change is impossible; one step from the MAE weights
    # must stay closer to them than to a fresh random encoder
    out = tmp_path / 'sam.pth'
    pretrain_toy_sam(f'{toy_root}/annotations/instances_train.json', f'{toy_root}/train',
                     str(out), epochs=1, batch_size=2, max_images=2, seed=0, lr=1e-6,
                     init_encoder=str(mae))
    tuned = torch.load(out)['image_encoder.blocks.0.attn.qkv.weight']
    assert torch.allclose(tuned, state['image_encoder.blocks.0.attn.qkv.weight'], atol=1e-4)


def test_losses_match_their_formulas():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    p = torch.sigmoid(logits)
    d = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    assert torch.allclose(dice_loss(logits, target), d[None])
    pt = torch.where(target > 0, p, 1 - p)
    a = torch.where(target > 0, torch.tensor(0.25), torch.tensor(0.75))
    f = (-a * (1 - pt) ** 2 * torch.log(pt)).mean()
    assert torch.allclose(focal_loss(logits, target), f[None], atol=1e-6)
