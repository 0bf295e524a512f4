# Short name: SAMIC on the toy world (see samic/samic_hsnet-r50_sam-tiny_1xb4-30e_toy-world.py).
_base_ = './samic/samic_hsnet-r50_sam-tiny_1xb4-30e_toy-world.py'
