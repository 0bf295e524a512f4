# SAMIC with the toy presets on the toy world exported in the PASCAL-5i layout (CPU):
#   python tools/misc/export_toy_fss.py data/toy_world data/toy_fss --layouts pascal5i
# 12 toy classes in folds of 3 (fold f tests on classes 3f + 1 .. 3f + 3), HSNet's
# 1,000 fixed episodes, boundary band 255 ignored. The model is the toy config's: its
# checkpoints load here (--cfg-options test_dataloader.dataset.num_episodes=N for a
# shorter list, test_dataloader.dataset.fold=F for another fold).
_base_ = ['./samic_hsnet-r50_sam-tiny_1xb4-30e_toy-world.py',
          '../_base_/datasets/pascal5i_fss.py']

work_dir = './work_dirs/samic_hsnet-r50_sam-tiny_1xb4-30e_toy-pascal-5i'
toy_voc_root = 'data/toy_fss/pascal5i/VOC2012/'

train_dataloader = dict(dataset=dict(_base_.pascal5i_train, _delete_=True,
                                     data_root=toy_voc_root, class_list='toy',
                                     pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(_base_.pascal5i_test, _delete_=True,
                                   data_root=toy_voc_root, class_list='toy',
                                   pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='FewShotSegMetric')]
test_evaluator = val_evaluator
