"""engine.gpu_stack and engine.launch: the GPU stack checked before a run, never a silent CPU
run, each torchrun process on its own GPU.

The GPU failure modes are simulated by monkeypatching torch.cuda and the mmcv probes; the
real kernels are exercised by tests/test_gpu (marker ``gpu``).
"""
import glob
import os.path as osp
import types
import warnings

import pytest
import torch
from mmengine.config import Config

import mmsamantics.engine.gpu_stack as gs
import mmsamantics.engine.launch as launch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def cuda(monkeypatch):
    """torch.cuda of a machine with two GPUs of compute capability 9.0 (nothing real)."""
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    monkeypatch.setattr(torch.cuda, 'set_device', calls.append)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda d=None: 'NVIDIA H100')
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda d=None: (9, 0))
    monkeypatch.setattr(gs, 'visible_nvidia_gpus', lambda: 2)
    return calls


@pytest.fixture
def no_cuda(monkeypatch):
    """torch cannot see a GPU and says why, as torch does with a too-old driver."""
    def unavailable():
        warnings.warn('CUDA initialization: The NVIDIA driver on your system is too old '
                      '(found version 11040).\nPlease update your GPU driver.')
        return False
    monkeypatch.setattr(torch.cuda, 'is_available', unavailable)
    monkeypatch.setattr(torch.version, 'cuda', '13.0')


def test_cpu_machine_runs_on_cpu(no_cuda, monkeypatch):
    monkeypatch.setattr(gs, 'visible_nvidia_gpus', lambda: 0)
    assert gs.check_gpu_stack() == 'cpu'


def test_driver_too_old_stops(no_cuda, monkeypatch):
    monkeypatch.setattr(gs, 'visible_nvidia_gpus', lambda: 8)
    with pytest.raises(gs.GPUStackError) as e:
        gs.check_gpu_stack(allow_pytorch_deform_attn=True)
    assert str(e.value) == (
        f'8 NVIDIA GPU(s) are visible but torch {torch.__version__} (built for CUDA 13.0) '
        'cannot use them: CUDA initialization: The NVIDIA driver on your system is too old '
        '(found version 11040). The NVIDIA driver is most likely older than CUDA 13.0 needs '
        '(`nvidia-smi` prints the newest CUDA the driver supports): update the driver, or '
        "install a torch built for the driver's CUDA; to run on CPU on purpose, set "
        'CUDA_VISIBLE_DEVICES=')


def test_cpu_only_torch_on_a_gpu_machine_stops(no_cuda, monkeypatch):
    monkeypatch.setattr(gs, 'visible_nvidia_gpus', lambda: 1)
    monkeypatch.setattr(torch.version, 'cuda', None)
    with pytest.raises(gs.GPUStackError, match='is a CPU-only build: install the CUDA build'):
        gs.check_gpu_stack()


def test_visible_gpus_are_device_nodes(monkeypatch):
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    nodes = ['/dev/nvidia0', '/dev/nvidia1']
    monkeypatch.setattr(gs.glob, 'glob', lambda pattern: nodes if pattern ==
                        '/dev/nvidia[0-9]*' else [])
    assert gs.visible_nvidia_gpus() == 2
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    assert gs.visible_nvidia_gpus() == 0
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '-1')
    assert gs.visible_nvidia_gpus() == 0


def test_cpu_only_mmcv_ops_on_a_gpu_stop(cuda, monkeypatch):
    monkeypatch.setattr(gs, 'mmcv_cuda_version', lambda: None)
    with pytest.raises(gs.GPUStackError) as e:
        gs.check_gpu_stack()
    assert str(e.value) == (
        'torch sees 2 GPU(s) but the installed mmcv was built without CUDA ops (deformable '
        'attention and focal loss would fail on the first step): ' + gs.FIX_OPS)
    assert 'MMSAM_FORCE_CUDA=1 bash tools/setup_env.sh' in gs.FIX_OPS
    assert '--allow-pytorch-deform-attn' in gs.FIX_OPS


def test_allow_pytorch_deform_attn_switches_both_ops(cuda, monkeypatch):
    import mmcv.ops.multi_scale_deform_attn as msda
    import mmdet.models.losses.focal_loss as focal
    monkeypatch.setattr(gs, 'mmcv_cuda_version', lambda: None)
    monkeypatch.setattr(msda, 'IS_CUDA_AVAILABLE', msda.IS_CUDA_AVAILABLE)  # restored after
    monkeypatch.setattr(focal, 'sigmoid_focal_loss', focal.sigmoid_focal_loss)
    what = gs.check_gpu_stack(allow_pytorch_deform_attn=True)
    assert what == 'cuda (pure-PyTorch deformable attention and focal loss)'
    assert msda.IS_CUDA_AVAILABLE is False
    assert focal.sigmoid_focal_loss is gs._labels_sigmoid_focal_loss


def test_kernel_for_another_arch_names_the_rebuild(cuda, monkeypatch):
    def no_kernel(device):
        raise RuntimeError('CUDA error: no kernel image is available for execution on the '
                           'device\nCUDA kernel errors might be asynchronously reported')
    monkeypatch.setattr(gs, 'mmcv_cuda_version', lambda: '12.8')
    monkeypatch.setattr(gs, 'deform_attn_probe', no_kernel)
    with pytest.raises(gs.GPUStackError) as e:
        gs.check_gpu_stack()
    assert str(e.value) == (
        "mmcv's CUDA deformable attention fails on NVIDIA H100 (compute capability 9.0): "
        'CUDA error: no kernel image is available for execution on the device. Rebuild mmcv '
        'for it: `MMSAM_FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 bash tools/setup_env.sh`')
    monkeypatch.setattr(gs, 'deform_attn_probe', lambda device: 0.0)
    assert gs.check_gpu_stack() == 'cuda (mmcv CUDA ops, CUDA 12.8)'


def test_labels_focal_loss_matches_the_formula():
    """The PyTorch stand-in for mmcv's kernel: labels in [0, C], C = background."""
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 4, generator=g)
    labels = torch.tensor([0, 3, 4, 1, 4, 2])
    weight = torch.rand(6, generator=g)
    p = pred.sigmoid()
    t = torch.nn.functional.one_hot(labels, 5)[:, :4].float()
    pt = (1 - p) * t + p * (1 - t)
    alpha = 0.25 * t + 0.75 * (1 - t)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(pred, t, reduction='none') \
        * alpha * pt.pow(2.0) * weight[:, None]
    out = gs._labels_sigmoid_focal_loss(pred, labels, weight, 2.0, 0.25, 'sum')
    torch.testing.assert_close(out, ref.sum(), rtol=1e-6, atol=1e-7)


def test_set_local_device_binds_local_rank(cuda, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '1')
    assert launch.set_local_device() == torch.device('cuda', 1)
    assert cuda == [1]
    monkeypatch.setenv('LOCAL_RANK', '2')
    with pytest.raises(RuntimeError, match=r'LOCAL_RANK=2 but this node has 2 visible GPU'):
        launch.set_local_device()


def test_set_local_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert launch.set_local_device() is None


def test_prepare_device_exits_with_one_message(cuda, monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    monkeypatch.setattr(gs, 'mmcv_cuda_version', lambda: None)
    with pytest.raises(SystemExit) as e:
        launch.prepare_device()
    assert str(e.value).startswith('error: torch sees 2 GPU(s) but the installed mmcv')
    assert cuda == [0]  # bound to LOCAL_RANK's GPU before the check touches one


@pytest.mark.filterwarnings('ignore:CUDA initialization')
def test_no_gloo_fallback_when_torch_cannot_use_the_gpus(no_cuda, monkeypatch):
    monkeypatch.setattr(launch, 'visible_nvidia_gpus', lambda: 2)
    monkeypatch.setattr(gs, 'visible_nvidia_gpus', lambda: 2)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    with pytest.raises(gs.GPUStackError, match='cannot use them'):
        launch.setup_cpu_distributed(Config(dict()), 'pytorch')
    assert not torch.distributed.is_initialized()


def test_tool_config_checks_the_stack_first(monkeypatch):
    """train.py / test.py load their config through load_tool_config: the GPU check (with
    the tool's --allow-pytorch-deform-attn) runs before any file check or build."""
    seen = []

    def stop(allow):
        seen.append(allow)
        raise KeyboardInterrupt
    monkeypatch.setattr(launch, 'prepare_device', stop)
    args = types.SimpleNamespace(config=osp.join(REPO, 'configs', 'insam_detr_toy.py'),
                                 launcher='none', cfg_options=None, local_rank=0,
                                 allow_pytorch_deform_attn=True, work_dir=None)
    with pytest.raises(KeyboardInterrupt):
        launch.load_tool_config(args, 'train')
    assert seen == [True]


@pytest.mark.parametrize('tool,call', [
    ('tools/train.py', 'load_tool_config('), ('tools/test.py', 'load_tool_config('),
    ('tools/analysis/kshot_eval.py', 'prepare_device('),
    ('tools/misc/cache_embeddings.py', 'set_local_device(')])
def test_torchrun_tools_bind_their_gpu(tool, call):
    """Every tool that runs under torchrun goes through the shared helper above."""
    with open(osp.join(REPO, tool)) as f:
        assert call in f.read()


RUNTIME_BASES = {
    osp.join(REPO, 'configs', '_base_', 'default_runtime.py'),
    osp.join(REPO, 'configs', 'linear_probe', '_base_', 'linear_probe_runtime.py')}


def _family_roots():
    """Configs and bases that inherit a runtime from mmdet / mmpretrain (directly or through
    configs/_base_/default_runtime.py; InSAM-DETR's model base inherits mmdet's Deformable
    DETR config): every other config inherits one of them."""
    roots = []
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)):
        with open(path) as f:
            text = f.read()
        if path not in RUNTIME_BASES and ('default_runtime' in text or 'mmdet::' in text):
            roots.append(path)
    return roots + [osp.join(REPO, 'configs', 'linear_probe',
                             'linear-probe_sam-vit-h_1xb128-10e_in1k.py')]


@pytest.mark.parametrize('path', _family_roots(), ids=osp.basename)
def test_real_configs_carry_a_dist_timeout(path):
    """Rank 0 runs COCOeval alone (up to three times); NCCL's default 10 min is too short."""
    dist_cfg = Config.fromfile(path).env_cfg.dist_cfg
    assert dist_cfg.timeout == 7200 and dist_cfg.backend == 'nccl'


def test_no_config_drops_the_timeout():
    """Only the family roots and runtime bases set env_cfg (their children inherit it)."""
    allowed = set(_family_roots()) | RUNTIME_BASES
    for path in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True):
        with open(path) as f:
            assert path in allowed or 'env_cfg' not in f.read(), path
