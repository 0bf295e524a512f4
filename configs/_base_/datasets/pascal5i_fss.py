# PASCAL-5i few-shot episodes from the VOC 2012 folders (PascalFiveIDataset; the expected tree
# is in docs/samic.md, "Few-shot segmentation data"). Test: HSNet's protocol, 1,000 fixed
# episodes (seed 0) over the fold's 5 classes, 255 boundary pixels ignored. Training: every
# (image, class) pair of the 15 other classes, new supports each epoch.
# The fold is a field of each dataset, set per run without editing a file, e.g.
#   --cfg-options test_dataloader.dataset.fold=1
# (training: also train_dataloader.dataset.fold=1 val_dataloader.dataset.fold=1).
# The names avoid mmdet's, so this file can sit next to a model config in `_base_`.
voc_root = 'data/VOCdevkit/VOC2012/'
voc_prefix = dict(img='JPEGImages/', seg='SegmentationClassAug/')

pascal5i_train = dict(
    type='PascalFiveIDataset', data_root=voc_root, data_prefix=voc_prefix,
    ann_file='ImageSets/SegmentationAug/train_aug.txt', mode='train', fold=0, shots=1)
pascal5i_test = dict(
    type='PascalFiveIDataset', data_root=voc_root, data_prefix=voc_prefix,
    ann_file='ImageSets/Segmentation/val.txt', mode='test', fold=0, shots=1,
    num_episodes=1000, seed=0, test_mode=True)
