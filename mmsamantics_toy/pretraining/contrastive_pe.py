"""Stage 1 of the toy SAM 3: its Perception Encoder trained contrastively on image captions.

SAM 3's image side is the Perception Encoder (Bolya et al., "Perception Encoder", 2025), a
ViT trained with CLIP's contrastive objective on image-text pairs, before SAM 3's detector
and tracker are trained on top of it (Carion et al., "SAM 3: Segment Anything with
Concepts"). This stage reproduces that on the toy world: the ``toy`` vision backbone
(``sam3``'s ViT ``trunk`` and the detector's simple-FPN neck ``convs``) and a small ``sam3``
``VETextEncoder`` are trained with CLIP's symmetric InfoNCE loss and a learnable temperature
(Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
§2.3) on one caption per training image.

The captions are **image-level labels**, like the real image-text pairs: they are written
from each image's annotations as counted noun phrases in random order, e.g. "two red circles
and a blue star" (:func:`image_caption`). Only the category names and counts enter the
caption; no box or mask is used as a training signal (boxes only keep the random crop from
cutting objects off, so that the caption stays true of the crop).

Image embedding: each of the 4 neck levels mean-pooled, the 4 vectors averaged, then a
linear projection (so every neck conv is trained). Text embedding: the text encoder's
output (its ``resizer``, SAM 3's text memory) at the end-of-text token, CLIP's pooling,
then a linear projection. Tokenizer: ``sam3``'s ``SimpleTokenizer`` on a small BPE
vocabulary whose merges make each caption word one token (:func:`write_caption_bpe`).

Shape shorthand: B images (= B captions), S input side (224), D neck / text width (64),
E contrastive embedding width, L the text context (32 tokens).
"""
import gzip
import os
import os.path as osp
import time
from collections import Counter
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from pycocotools.coco import COCO
from torch import Tensor, nn

from mmsamantics.models.sam3.sam3_presets import SAM3_PRESETS, build_sam3_vision_backbone
from mmsamantics.utils.images import load_image_checked

NUMBER_WORDS = ('a', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten')
VISION_PREFIX = 'detector.backbone.vision_backbone.'
TEXT_PREFIX = 'detector.backbone.language_backbone.'
HEAD_PREFIX = 'contrastive_head.'  # the projections and temperature (stage 1 file only)
PIXEL_MEAN = PIXEL_STD = 127.5  # SAM 3's normalisation (mean = std = 0.5 on 0..1)


def caption_words(names: Sequence[str]) -> List[str]:
    """Every word a caption of these category names can contain (counts, the names' words
    and their plurals, ``and``)."""
    words = set(NUMBER_WORDS) | {'and'}
    for name in names:
        *attrs, kind = name.split()
        words |= {*attrs, kind, kind + 's'}
    return sorted(words)


def write_caption_bpe(path: str, words: Sequence[str]) -> str:
    """Write a BPE vocabulary for ``sam3``'s ``SimpleTokenizer`` in which each word is one
    token: its merges join every word's letters left to right (longest words first, so no
    merge of a short word splits a longer one). The vocabulary is the 512 byte-level tokens,
    one entry per merge, then start / end of text."""
    merges: List[Tuple[str, str]] = []
    for word in sorted(set(words), key=lambda w: (-len(w), w)):
        for i in range(1, len(word)):
            m = (word[:i], word[i] + ('</w>' if i == len(word) - 1 else ''))
            if m not in merges:
                merges.append(m)
    with gzip.open(path, 'wt', encoding='utf-8') as fh:
        # no trailing newline: an empty line would be read as a merge
        fh.write('\n'.join(['#version: toy captions'] + [' '.join(m) for m in merges]))
    return path


def image_caption(names: Sequence[str], rng: Optional[np.random.Generator] = None) -> str:
    """A caption from the category names of an image's objects (one name per object).

    Each class becomes a counted phrase ("a red circle", "two blue stars"); the phrases are
    joined as "p1, p2 and p3", in the order of first appearance, or shuffled by ``rng``.
    """
    phrases = []
    for name, n in Counter(names).items():
        if n > len(NUMBER_WORDS):
            raise ValueError(f'{n} x {name!r}: counts above {len(NUMBER_WORDS)} have no word')
        phrases.append(f'{NUMBER_WORDS[n - 1]} {name}{"s" if n > 1 else ""}')
    if rng is not None:
        phrases = [phrases[i] for i in rng.permutation(len(phrases))]
    if len(phrases) < 2:
        return ''.join(phrases)
    return ', '.join(phrases[:-1]) + ' and ' + phrases[-1]


def clip_loss(img: Tensor, txt: Tensor, logit_scale: Tensor) -> Tuple[Tensor, Tensor]:
    """CLIP's symmetric InfoNCE on B matched pairs, and the in-batch retrieval accuracy.

    Args:
        img / txt: (B, E) embeddings (normalised here); pair i is (img[i], txt[i]).
        logit_scale: () log of the inverse temperature.

    Returns:
        (loss (), accuracy ()): the mean of the image->text and text->image cross-entropies
        over the (B, B) cosine logits, and the mean of the two top-1 retrieval accuracies.
    """
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    logits = logit_scale.exp() * img @ txt.t()  # (B, B)
    target = torch.arange(len(img), device=img.device)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    acc = ((logits.argmax(1) == target).float().mean()
           + (logits.argmax(0) == target).float().mean()) / 2
    return loss, acc


def build_toy_text_encoder(bpe_path: str, preset: str = 'toy') -> nn.Module:
    """``sam3``'s ``VETextEncoder`` at a preset's text size (as the preset's ``Sam3Image``
    builds it), its ``torch.empty`` tables filled as in ``_init_uninitialised``."""
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer
    p = SAM3_PRESETS[preset]
    tokenizer = SimpleTokenizer(bpe_path=bpe_path)
    text = VETextEncoder(d_model=p['d_model'], tokenizer=tokenizer, width=p['text_width'],
                         heads=p['text_heads'], layers=p['text_layers'],
                         vocab_size=tokenizer.vocab_size, use_act_checkpoint=False)
    nn.init.normal_(text.encoder.positional_embedding, std=0.02)
    nn.init.normal_(text.encoder.text_projection, std=0.02)  # unused by SAM 3's forward
    return text


class ContrastivePE(nn.Module):
    """The toy Perception Encoder and text tower with CLIP's projections and temperature.

    Args:
        bpe_path: the tokenizer vocabulary (:func:`write_caption_bpe`).
        embed_dim: E, the width of the shared embedding space.
    """

    def __init__(self, bpe_path: str, embed_dim: int = 64, preset: str = 'toy') -> None:
        super().__init__()
        self.vision = build_sam3_vision_backbone(preset)  # trunk + detector neck convs
        self.text = build_toy_text_encoder(bpe_path, preset)
        d = SAM3_PRESETS[preset]['d_model']
        self.img_proj = nn.Linear(d, embed_dim)
        self.txt_proj = nn.Linear(d, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def encode_image(self, x: Tensor) -> Tensor:
        """x (B, 3, S, S) -> (B, E): the 4 neck levels mean-pooled, averaged, projected."""
        top = self.vision.trunk(x)[-1]  # (B, C, h, w)
        pooled = torch.stack([conv(top).mean(dim=(2, 3)) for conv in self.vision.convs])
        return self.img_proj(pooled.mean(0))

    def encode_text(self, captions: List[str]) -> Tensor:
        """B captions -> (B, E): the text memory (SAM 3's, L x B x D) at the end-of-text
        token (the last non-padding one, as CLIP pools), projected."""
        ctx = self.text.context_length
        lengths = [len(self.text.tokenizer.encode(c)) + 2 for c in captions]
        if max(lengths) > ctx:
            raise ValueError(f'a caption of {max(lengths)} tokens exceeds the text context '
                             f'({ctx}): {captions[int(np.argmax(lengths))]!r}')
        pad, memory, _ = self.text(captions, device=self.logit_scale.device)
        eot = (~pad).sum(1) - 1  # (B,) pad is True on padding
        return self.txt_proj(memory[eot, torch.arange(len(captions))])

    def sam3_state(self) -> dict:
        """The released ``sam3.pt`` keys of the two towers, and this stage's head."""
        state = {VISION_PREFIX + k: v for k, v in self.vision.state_dict().items()}
        state.update({TEXT_PREFIX + k: v for k, v in self.text.state_dict().items()})
        for name in ('img_proj', 'txt_proj'):
            state.update({f'{HEAD_PREFIX}{name}.{k}': v
                          for k, v in getattr(self, name).state_dict().items()})
        state[HEAD_PREFIX + 'logit_scale'] = self.logit_scale.data
        return {k: v.detach().clone() for k, v in state.items()}


def load_captioned_images(ann_file: str, img_dir: str, max_images: Optional[int] = None
                          ) -> List[Tuple[np.ndarray, np.ndarray, List[str]]]:
    """The annotated images of a COCO file with what a caption and a crop need.

    Returns:
        one ``(rgb (H, W, 3) uint8, boxes (N, 4) xyxy pixels, names (N category names))``
        per image, in sorted image-id order.
    """
    coco = COCO(ann_file)
    names = {c['id']: c['name'] for c in coco.dataset['categories']}
    img_ids = [i for i in sorted(coco.imgs) if coco.imgToAnns[i]][:max_images]
    if not img_ids:
        raise ValueError(f'{ann_file} has no annotated image to caption')
    out = []
    for i in img_ids:
        bgr = load_image_checked(osp.join(img_dir, coco.imgs[i]['file_name']))
        anns = coco.imgToAnns[i]
        boxes = np.array([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                           a['bbox'][1] + a['bbox'][3]] for a in anns], np.float64)
        out.append((np.ascontiguousarray(bgr[..., ::-1]), boxes,
                    [names[a['category_id']] for a in anns]))
    return out


def crop_keeping_objects(rgb: np.ndarray, boxes: np.ndarray, size: int,
                         rng: np.random.Generator, flip: bool = True) -> Tensor:
    """A random crop that contains every object, resized to S x S (SAM 3's squash resize),
    flipped left-right half of the time, normalised as SAM 3 normalises.

    Args:
        rgb: (H, W, 3) uint8. boxes: (N, 4) xyxy pixels of all objects.

    Returns:
        (3, S, S) float32.
    """
    h, w = rgb.shape[:2]
    x0, y0 = np.clip(boxes[:, :2].min(0), 0, None)
    x1, y1 = np.minimum(boxes[:, 2:].max(0), (w, h))
    left, top = int(rng.uniform(0, x0)), int(rng.uniform(0, y0))
    right, bottom = int(np.ceil(rng.uniform(x1, w))), int(np.ceil(rng.uniform(y1, h)))
    crop = rgb[top:max(bottom, top + 1), left:max(right, left + 1)]
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    if flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float()
    return (x - PIXEL_MEAN) / PIXEL_STD


def pretrain_toy_sam3_pe(ann_file: str, img_dir: str, out_file: str, epochs: int = 30,
                         batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                         max_images: Optional[int] = None) -> dict:
    """Train the toy SAM 3's vision backbone and text encoder contrastively on captions.

    Writes ``out_file`` in the released ``sam3.pt`` layout
    (``detector.backbone.vision_backbone.{trunk,convs}.*`` and
    ``detector.backbone.language_backbone.*``; the projections and temperature under
    ``contrastive_head.*``) and the tokenizer vocabulary beside it (``<stem>_bpe.txt.gz``).

    Args:
        ann_file / img_dir: a COCO-format dataset; only its category names and per-image
            counts (the captions) and boxes (crops that keep every object) are read.
        out_file: where to write the ``.pth`` state dict.
        epochs / batch_size / lr: AdamW schedule (one-cycle, cosine decay to 0).
        seed: makes the weights reproducible.
        max_images: use only the first N images (tests).

    Returns:
        dict with the first and last epoch's mean loss and in-batch retrieval accuracy
        (image->text and text->image top-1 among the batch's captions), the wall time, the
        number of images and the vocabulary path.
    """
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    data = load_captioned_images(ann_file, img_dir, max_images)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    bpe = write_caption_bpe(osp.splitext(out_file)[0] + '_bpe.txt.gz',
                            caption_words([n for d in data for n in d[2]]))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ContrastivePE(bpe)
    size = SAM3_PRESETS['toy']['resolution']
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * int(np.ceil(len(data) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)
    t0, history = time.time(), []
    model.train()
    for epoch in range(epochs):
        losses, accs = [], []
        order = rng.permutation(len(data))
        for s in range(0, len(data), batch_size):
            batch = [data[j] for j in order[s:s + batch_size]]
            x = torch.stack([crop_keeping_objects(rgb, b, size, rng) for rgb, b, _ in batch])
            captions = [image_caption(names, rng) for _, _, names in batch]
            loss, acc = clip_loss(model.encode_image(x), model.encode_text(captions),
                                  model.logit_scale)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():  # CLIP's clamp: the temperature stays above 0.01
                model.logit_scale.clamp_(0, float(np.log(100)))
            losses.append(loss.item())
            accs.append(acc.item())
        history.append((float(np.mean(losses)), float(np.mean(accs))))
        print_log(f'[toy SAM 3 PE] epoch {epoch + 1}/{epochs}: loss {history[-1][0]:.3f}, '
                  f'in-batch retrieval {history[-1][1]:.3f}, temperature '
                  f'{1 / model.logit_scale.exp().item():.4f} ({time.time() - t0:.0f}s)',
                  logger='current')
    torch.save(model.sam3_state(), out_file)
    return dict(first_loss=history[0][0], last_loss=history[-1][0],
                first_acc=history[0][1], last_acc=history[-1][1],
                seconds=time.time() - t0, images=len(data), bpe_path=bpe)
