# mmdet's runtime plus a distributed timeout long enough for rank 0's evaluation: COCOeval
# runs up to three times (all / base / novel classes) while the other ranks wait in a
# collective, and NCCL's default of 10 minutes would abort the job.
_base_ = ['mmdet::_base_/default_runtime.py']

env_cfg = dict(dist_cfg=dict(backend='nccl', timeout=7200))  # seconds
