# SAM 3 (Carion et al., 2025) as a training-free in-context detector: a query class's k
# reference crops pasted beside the target, their boxes as SAM 3's positive exemplar prompts
# (model.prompt='text': the class name instead). COCO val2017, all 80 classes, the
# matcher's references, pipeline and metric (its config is the base: only the model and the
# input size differ). SAM 3 runs on a CUDA GPU only. No training: python tools/test.py CONFIG
_base_ = '../matcher/matcher_sam-vit-h_dinov2-vit-l14_coco.py'

# ---- paths and sizes: change these, not the dicts below ----
work_dir = './work_dirs/sam3-exemplar_sam3_coco'
sam3_preset = 'full'
sam3_checkpoint = 'checkpoints/sam3.pt'  # https://huggingface.co/facebook/sam3 (gated)
# not in the sam3 wheel: facebookresearch/sam3, assets/bpe_simple_vocab_16e6.txt.gz
bpe_path = 'checkpoints/bpe_simple_vocab_16e6.txt.gz'
img_size = 1008  # SAM 3 input side
prompt = 'exemplar'  # or 'text'
class_split = 'coco'  # the dataset's: names of the text prompts

model = dict(
    _delete_=True,
    type='SAM3ExemplarDetector', preset=sam3_preset, checkpoint=sam3_checkpoint,
    bpe_path=bpe_path, prompt=prompt, class_split=class_split,
    # SAM 3's normalisation: (x / 255 - 0.5) / 0.5, RGB
    data_preprocessor=dict(type='InContextDataPreprocessor', mean=[127.5] * 3,
                           std=[127.5] * 3, bgr_to_rgb=True, pad_size_divisor=img_size,
                           pad_value=0),
    test_cfg=dict(score_thr=0.0, max_per_class=100, max_per_img=100, strip_ratio=0.5,
                  context=0.25))
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
