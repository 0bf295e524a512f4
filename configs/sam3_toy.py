# Short name: SAM 3 exemplar prompting, tiny preset, toy world (see sam3/sam3-exemplar_sam3-tiny_toy-world.py).
_base_ = './sam3/sam3-exemplar_sam3-tiny_toy-world.py'
