# Short name: PerSAM on the toy world (see persam/persam_sam-tiny_toy-world.py).
_base_ = './persam/persam_sam-tiny_toy-world.py'
