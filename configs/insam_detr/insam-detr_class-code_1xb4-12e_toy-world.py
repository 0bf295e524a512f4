# Diagnostic (analysis only): the paper's conditioning (reference added to the content
# queries, plain classification head) fed a learned code per class label instead of SAM
# tokens: how class-selective the paper's design can be with a perfect reference. Evaluated
# on the 9 BASE classes (the codes exist for the training labels only).
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_class-code_1xb4-12e_toy-world'
custom_imports = dict(imports=['mmsamantics', 'mmsamantics.analysis'],
                      allow_failed_imports=False)
model = dict(type='ClassCodeInSAMDETR', num_class_codes=9)
val_dataloader = dict(dataset=dict(class_split='toy-base'))
test_dataloader = val_dataloader
