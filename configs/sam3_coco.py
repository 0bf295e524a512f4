# Short name: SAM 3 exemplar prompting on COCO (see sam3/sam3-exemplar_sam3_coco.py).
_base_ = './sam3/sam3-exemplar_sam3_coco.py'
