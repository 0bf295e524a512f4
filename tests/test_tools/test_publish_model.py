"""tools/misc/publish_model.py: weights only, optional float16, the hash in the name."""
import hashlib
import os.path as osp

import pytest
import torch

from helpers import load_tool


def test_publish_keeps_only_the_weights(tmp_path):
    tool = load_tool('tools/misc/publish_model.py')
    src = tmp_path / 'epoch_1.pth'
    state = dict(w=torch.randn(3, 2), steps=torch.tensor(7))
    torch.save(dict(meta=dict(epoch=1), state_dict=state, optimizer=dict(lr=1.0),
                    message_hub={}), src)
    out = tool.publish(str(src), str(tmp_path / 'model.pth'), fp16=True)
    with open(out, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()[:8]
    assert osp.basename(out) == f'model-{sha}.pth'
    ckpt = torch.load(out, weights_only=False)
    assert set(ckpt) == {'meta', 'state_dict'} and ckpt['meta']['epoch'] == 1
    assert ckpt['state_dict']['w'].dtype == torch.float16
    torch.testing.assert_close(ckpt['state_dict']['w'].float(), state['w'], atol=2e-3, rtol=1e-3)
    assert ckpt['state_dict']['steps'].dtype == torch.int64  # integers stay as they are
    kept = tool.publish(str(src), str(tmp_path / 'plain.pth'), hash_name=False)
    torch.testing.assert_close(torch.load(kept, weights_only=False)['state_dict']['w'], state['w'])
    torch.save(dict(w=1), tmp_path / 'bare.pth')
    with pytest.raises(ValueError, match='no state_dict'):
        tool.publish(str(tmp_path / 'bare.pth'), str(tmp_path / 'x.pth'))
