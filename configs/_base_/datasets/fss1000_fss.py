# FSS-1000 few-shot episodes from its class folders (FSS1000Dataset; tree in docs/samic.md,
# "Few-shot segmentation data"). No folds: the class list files are the splits (520 train /
# 240 val / 240 test classes). Test: one episode per test image (each image once as the
# query, supports drawn with seed 0), 2,400 episodes over the 240 test classes.
fss_root = 'data/FSS-1000/'

fss1000_train = dict(type='FSS1000Dataset', data_root=fss_root, ann_file='splits/train.txt',
                     mode='train', shots=1)
fss1000_test = dict(type='FSS1000Dataset', data_root=fss_root, ann_file='splits/test.txt',
                    mode='test', shots=1, seed=0, test_mode=True)
