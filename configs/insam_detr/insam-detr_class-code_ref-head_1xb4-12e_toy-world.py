# Diagnostic upper bound (analysis only): the reference is replaced by a learned code per
# class label (a perfect class identity), with the reference-aware head and 4 negatives per
# image. It measures what the conditioning path can do with the best possible reference; it
# cannot run on classes it was not trained on, so it is evaluated on the 9 BASE classes.
_base_ = './insam-detr_sam-tiny_ref-head_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_class-code_ref-head_1xb4-12e_toy-world'
custom_imports = dict(imports=['mmsamantics', 'mmsamantics.analysis'],
                      allow_failed_imports=False)
model = dict(type='ClassCodeInSAMDETR', num_class_codes=9)
val_dataloader = dict(dataset=dict(class_split='toy-base'))
test_dataloader = val_dataloader
