"""tools/annotate.py's refusals, and a folder annotated through the API used as the
references of tools/infer.py and tools/misc/make_reference_sets.py, end to end."""
import json
import os.path as osp

import pytest
import torch

from helpers import MATCHER_CONFIG, PY, load_tool, run_tool

pytest.importorskip('fastapi', reason='the annotation tool is the optional extra [app]')
pytest.importorskip('httpx', reason='the test client of FastAPI needs httpx (extra [app])')

RANDOM_SAM = ['model.backbone.checkpoint=None', 'model.mask_head.decoder.checkpoint=None',
              'model.feature_extractor.checkpoint=None',
              'model.proposal_generator.points_per_side=6']


def test_tool_refuses_bad_input_with_one_message(app_folder, tmp_path, capsys):
    tool = load_tool('tools/annotate.py')
    out = str(tmp_path / 'ann.json')
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('x')
    assert tool.main([str(empty), '--out', out]) == 2
    assert 'no readable image in' in capsys.readouterr().err
    bad = tmp_path / 'other.pth'
    torch.save(dict(state_dict={'not_a_layer.weight': torch.zeros(1)}), bad)
    assert tool.main([app_folder, '--out', out, '--config', MATCHER_CONFIG, '--checkpoint',
                      str(bad), '--device', 'cpu', '--cfg-options', *RANDOM_SAM]) == 2
    err = capsys.readouterr().err
    assert 'does not fit the model of this config' in err and 'not_a_layer.weight' in err
    (tmp_path / 'elsewhere.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='x.jpg')], categories=[dict(id=1, name='a')],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 1, 1])])))
    assert tool.main([app_folder, '--out', str(tmp_path / 'elsewhere.json'), '--config',
                      MATCHER_CONFIG, '--device', 'cpu', '--cfg-options', *RANDOM_SAM]) == 2
    assert 'made for another image folder' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args([app_folder, '--out', out, '--find-model', 'only-a-name'])


@pytest.mark.e2e
def test_annotated_folder_is_a_reference_file(make_session, app_folder, tmp_path):
    from fastapi.testclient import TestClient
    from mmsamantics.app.server import create_app
    out = str(tmp_path / 'refs.json')
    c = TestClient(create_app(make_session(out=out)))
    for image, cls, prompt in [('000000.png', 'circle', dict(points=[[155, 137, 1]])),
                               ('000001.png', 'square', dict(box=[40, 40, 160, 160])),
                               ('000002.png', 'circle', dict(points=[[80, 70, 1]]))]:
        r = c.post('/api/instances', json=dict(image=image, category=cls, prompts=[prompt]))
        assert r.status_code == 200, r.text
    rc, log = run_tool([PY, 'tools/infer.py', MATCHER_CONFIG, '--refs', out, '--ref-img-dir',
                        app_folder, '--img-dir',
                        app_folder, '--out-dir', str(tmp_path / 'infer'), '--device', 'cpu',
                        '--score-thr', '0', '--no-progress', '--cfg-options', *RANDOM_SAM])
    assert rc == 0, log[-3000:]
    assert '3 references of 2 classes ready' in log
    summary = json.load(open(tmp_path / 'infer' / 'summary.json'))
    assert summary['classes'] == ['circle', 'square'] and summary['images'] == 3
    assert [osp.basename(s['file']) for s in summary['skipped_files']] == ['broken.png']
    images = json.load(open(tmp_path / 'infer' / 'images.json'))
    assert images['categories'] == [dict(id=1, name='circle'), dict(id=2, name='square')]
    load_tool('tools/misc/make_reference_sets.py').main([
        out, '--out-dir', str(tmp_path / 'sets'), '--seeds', '0', '--max-shots', '1',
        '--selection', 'per-class', '--min-area', '0', '--border', '0', '--frame', '0'])
    sets = json.load(open(osp.join(tmp_path, 'sets', 'refs_seed0.json')))
    assert sorted(c['name'] for c in sets['categories']) == ['circle', 'square']
