# SAM 3's vision backbone (Perception Encoder + simple-FPN neck, frozen) with sam3's own
# normalisation (mean = std = 0.5, i.e. 127.5 on 0..255), at its 1008 px. Used as
#   python tools/analysis/tsne.py ... --what backbone \
#       --backbone-cfg configs/_base_/models/sam3_pe_backbone.py
# (t-SNE resizes the longest side to 1008 and zero-pads: the masks stay aligned with the
# features). out_levels=(): only vision_features (256 x 72 x 72), what sam3's detector reads.
sam3_checkpoint = 'checkpoints/sam3.pt'
img_size = 1008

backbone = dict(type='SAM3ImageEncoder', preset='full', checkpoint=sam3_checkpoint,
                out_levels=())
data_preprocessor = dict(type='InContextDataPreprocessor', mean=[127.5, 127.5, 127.5],
                         std=[127.5, 127.5, 127.5], bgr_to_rgb=True, pad_size_divisor=img_size)
