# COCO-20i few-shot episodes from the COCO 2014 instance annotations (CocoTwentyIDataset;
# tree in docs/samic.md, "Few-shot segmentation data"). Fold i tests on the classes
# {i + 4k} (0-based over the 80 in category-id order), trains on the 60 others. Test:
# HSNet's protocol, 1,000 fixed episodes (seed 0). Training: every (image, class) pair of
# train2014, new supports each epoch. COCO 2014, not 2017: train2017 holds most of val2014.
# The fold is a field of each dataset (--cfg-options test_dataloader.dataset.fold=1;
# training: also train_dataloader.dataset.fold=1 val_dataloader.dataset.fold=1).
coco14_root = 'data/coco/'

coco20i_train = dict(
    type='CocoTwentyIDataset', data_root=coco14_root,
    ann_file='annotations/instances_train2014.json', data_prefix=dict(img='train2014/'),
    mode='train', fold=0, shots=1)
coco20i_test = dict(
    type='CocoTwentyIDataset', data_root=coco14_root,
    ann_file='annotations/instances_val2014.json', data_prefix=dict(img='val2014/'),
    mode='test', fold=0, shots=1, num_episodes=1000, seed=0, test_mode=True)
