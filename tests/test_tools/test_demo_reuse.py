"""make demo reuses a trained detector only when it was made from the same config and SAM."""
import json

from mmengine.config import Config

from helpers import TOY_CONFIG, load_tool


def test_reuse_only_the_same_run(tmp_path):
    demo = load_tool('tools/demo.py')
    sam = tmp_path / 'sam.pth'
    sam.write_bytes(b'weights')
    cfg = Config.fromfile(TOY_CONFIG)
    stamp = demo.trained_stamp(cfg, str(sam))
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_12.pth').write_bytes(b'x')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_12.pth'))
    (work / 'demo_stamp.json').write_text(json.dumps(stamp))
    assert demo.reuse_trained(str(work), stamp)
    assert (work / 'epoch_12.pth').exists()
    # another toy SAM: the trained detector is stale, its checkpoints go
    sam.write_bytes(b'other weights')
    other = demo.trained_stamp(cfg, str(sam))
    assert other['sam'] != stamp['sam'] and other['config'] == stamp['config']
    assert not demo.reuse_trained(str(work), other)
    assert not (work / 'epoch_12.pth').exists() and not (work / 'last_checkpoint').exists()
    # another config
    cfg.train_cfg.max_epochs = 3
    assert demo.trained_stamp(cfg, str(sam))['config'] != other['config']
    assert not demo.reuse_trained(str(tmp_path / 'missing'), other)
