"""What the inference API checks without a model: reference files, image ids by path,
output folders, extreme images, folder listings, class ids."""
import json
import logging
import os
import os.path as osp
from collections import OrderedDict

import cv2
import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from helpers import decode
from mmsamantics.apis.categories import register_class
from mmsamantics.apis.image_ids import image_names, match_image_ids
from mmsamantics.apis.inputs import expand_inputs
from mmsamantics.apis.outputs import to_result
from mmsamantics.apis.references import prompt_to_box, read_coco_references
from mmsamantics.apis.run_dir import RecordStream, prepare_out_dir, write_json_atomic
from mmsamantics.apis.target_images import UnsuitableImageError, read_target
from mmsamantics.datasets.reference_validation import check_reference_doc, reference_box


def _refs_doc(**ann):
    a = dict(id=11, image_id=1, category_id=7, bbox=[10, 20, 30, 40])
    a.update(ann)
    return dict(images=[dict(id=1, file_name='a.png', height=400, width=600)],
                annotations=[a], categories=[dict(id=7, name='mug')])


@pytest.mark.parametrize('ann, msg', [
    (dict(bbox=[5000, 5000, 100, 100]), 'fully outside its 600x400 image'),
    (dict(bbox='10 20 30 40'), "field 'bbox': must be 4 numbers"),
    (dict(bbox=[10, 20, 30]), "field 'bbox': must be 4 numbers"),
    (dict(bbox=[10, 20, 0.5, 40]), 'degenerate box'),
    (dict(bbox=[10, 20, float('nan'), 40]), 'finite'),
    (dict(category_id='7'), "field 'category_id': must be an integer id, got str '7' "
                            '(write 7 without quotes)'),
    (dict(category_id=8), "field 'category_id': category id 8 is not in \"categories\""),
    (dict(image_id=2), "field 'image_id': image id 2 is not in \"images\""),
    (dict(id=True), "field 'id': must be an integer id"),
])
def test_reference_validator_names_file_annotation_and_field(tmp_path, ann, msg):
    path = tmp_path / 'refs.json'
    path.write_text(json.dumps(_refs_doc(**ann)))
    with pytest.raises(ValueError) as e:
        read_coco_references(str(path))
    text = str(e.value).replace('\n', ' ')
    assert msg in text and str(path) in text
    if 'id' not in ann:
        assert 'annotation 11' in text


def test_reference_boxes_clipped_and_checked_once():
    doc = _refs_doc(bbox=[-10, 380, 100, 100])
    imgs, cats = check_reference_doc(doc, 'r.json')
    assert cats == {7: 'mug'} and list(imgs) == [1]
    box = reference_box(doc['annotations'][0], imgs[1], 'r.json')
    np.testing.assert_array_equal(box, [0, 380, 90, 400])  # clipped to 600x400
    dup = _refs_doc()
    dup['annotations'].append(dict(dup['annotations'][0]))
    with pytest.raises(ValueError, match='annotation id 11 is used twice'):
        check_reference_doc(dup, 'r.json')
    # add_reference's prompts go through the same check
    with pytest.raises(ValueError, match='fully outside its 120x100 image'):
        prompt_to_box((100, 120), box=[500, 500, 600, 600])
    with pytest.raises(ValueError, match='box= must be 4 numbers'):
        prompt_to_box((100, 120), box='1 2 3 4')


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_fewer_shots_than_asked_warns(tmp_path):
    path = tmp_path / 'refs.json'
    path.write_text(json.dumps(_refs_doc()))
    logger = MMLogger.get_current_instance()
    h = _Keep()
    logger.addHandler(h)
    try:
        refs, _ = read_coco_references(str(path), shots=100)
    finally:
        logger.removeHandler(h)
    assert len(refs) == 1
    assert any("100 shots asked" in m and "'mug': 1" in m for m in h.messages)


def test_image_ids_by_relative_path_and_size(tmp_path):
    gt = tmp_path / 'gt.json'
    gt.write_text(json.dumps(dict(images=[
        dict(id=5, file_name='000001.png', height=40, width=60),
        dict(id=6, file_name='val/000002.png', height=40, width=60),
        dict(id=7, file_name='a/x.png', height=10, width=10),
        dict(id=8, file_name='b/x.png', height=10, width=10)])))
    paths = [str(tmp_path / 'val' / n) for n in ('000001.png', '000002.png', 'new.png')]
    names = image_names(paths, str(tmp_path / 'val'))
    assert names == ['000001.png', '000002.png', 'new.png']
    ids, unknown = match_image_ids(names, [(40, 60), (60, 40), None], str(gt))
    assert ids == [5, 6, 9] and unknown == ['new.png']  # a new id after the largest
    # the same base name in two folders: an error naming both, never one id for two images
    both = image_names([str(tmp_path / 'train' / '000001.png'),
                        str(tmp_path / 'val' / '000001.png')])
    assert both == ['train/000001.png', 'val/000001.png']
    with pytest.raises(ValueError, match='train/000001.png and val/000001.png both match'):
        match_image_ids(both, [(40, 60), (40, 60)], str(gt))
    with pytest.raises(ValueError, match='by path but not by size'):
        match_image_ids(['train/000001.png'], [(30, 30)], str(gt))
    with pytest.raises(ValueError, match=r"x.png matches several images .*'a/x.png', 'b/x.png'"):
        match_image_ids(['x.png'], [(10, 10)], str(gt))
    with pytest.raises(FileNotFoundError, match='--image-ids-from file not found'):
        match_image_ids(['x.png'], [None], str(tmp_path / 'missing.json'))
    (tmp_path / 'bad.json').write_text(json.dumps(dict(images=[dict(id='1', file_name='x')])))
    with pytest.raises(ValueError, match='integer "id"'):
        match_image_ids(['x.png'], [None], str(tmp_path / 'bad.json'))


def test_out_dir_checks_and_atomic_writes(tmp_path):
    a_file = tmp_path / 'f'
    a_file.write_text('x')
    with pytest.raises(ValueError, match='is a file'):
        prepare_out_dir(str(a_file))
    with pytest.raises(ValueError, match='cannot be written'):
        prepare_out_dir(str(a_file / 'sub'))
    out = tmp_path / 'out'
    assert prepare_out_dir(str(out)) == []
    (out / 'vis').mkdir()
    (out / 'vis' / 'old.png').write_bytes(b'png')
    (out / 'results.jsonl').write_text('{"index": 0}\n{"index": 1, "fi')  # torn last line
    (out / 'mine.txt').write_text('not an output')
    with pytest.raises(ValueError, match=r'holds the outputs of an earlier run \(results.jsonl,'
                                         r' vis\): add --resume'):
        prepare_out_dir(str(out))
    stream = RecordStream(str(out))
    assert list(stream.read()) == [0]
    assert (out / 'results.jsonl').read_text() == '{"index": 0}\n'  # cut for appending
    assert prepare_out_dir(str(out), overwrite=True) == ['results.jsonl', 'vis']
    assert sorted(os.listdir(out)) == ['mine.txt']  # stale pictures gone, other files kept
    # an interrupted write never leaves a truncated file: the old one stays whole
    target = out / 'results.json'
    write_json_atomic(str(target), [1, 2])
    with pytest.raises(TypeError):
        write_json_atomic(str(target), [1, object()])
    assert json.loads(target.read_text()) == [1, 2] and sorted(os.listdir(out)) == [
        'mine.txt', 'results.json']


def test_extreme_images(tmp_path):
    thin = tmp_path / 'thin.png'
    cv2.imwrite(str(thin), np.zeros((3, 4000, 3), np.uint8))
    with pytest.raises(UnsuitableImageError, match='too thin.*4000x3 px would be 256x0'):
        read_target(str(thin), 256)
    big = np.random.default_rng(0).integers(0, 255, (1600, 2400, 3), np.uint8)
    jpg, png = str(tmp_path / 'big.jpg'), str(tmp_path / 'big.png')
    cv2.imwrite(jpg, big)
    cv2.imwrite(png, big)
    with pytest.raises(UnsuitableImageError, match='too large.*2400x1600 px needs 4 mega'):
        read_target(png, 256, max_megapixels=1)
    img, ori = read_target(jpg, 256, max_megapixels=1)  # decoded at 1/4 size: in budget
    assert ori == (1600, 2400) and img.shape == (400, 600, 3)
    np.testing.assert_allclose(img.mean(), cv2.imread(jpg).mean(), atol=1)
    img, ori = read_target(png, 256)  # not a JPEG: decoded, then shrunk to 2 x 256
    assert ori == (1600, 2400) and img.shape == (341, 512, 3)
    small, ori = read_target(png, 1024)  # the model takes it as is
    assert small.shape == (1600, 2400, 3)
    with pytest.raises(FileNotFoundError) as e:  # a target, not a dataset: no config advice
        read_target(str(tmp_path / 'gone.png'), 256)
    assert str(e.value) == f"image not found: '{tmp_path / 'gone.png'}'"


def test_model_building_chatter_is_hidden_unless_verbose():
    from mmsamantics.utils.quiet_logs import quiet_logs
    logger, h = MMLogger.get_current_instance(), _Keep()
    logger.addHandler(h)
    try:
        for verbose in (False, True):
            with quiet_logs(verbose):
                logger.info(f'init_weights {verbose}')
                logger.warning(f'warning {verbose}')
    finally:
        logger.removeHandler(h)
    assert h.messages == ['warning False', 'init_weights True', 'warning True']


def test_results_map_back_to_original_pixels():
    masks = torch.zeros(1, 40, 60, dtype=torch.bool)
    masks[0, 10:20, 30:45] = True
    pred = InstanceData(bboxes=torch.tensor([[30., 10., 45., 20.]]), scores=torch.tensor([.9]),
                        labels=torch.tensor([0]), masks=masks)
    res = to_result(pred, ['mug'], 'a.jpg', 0, (400, 600), (40, 60))
    np.testing.assert_allclose(res['boxes'], [[300, 100, 450, 200]])
    full = np.zeros((1, 400, 600), bool)
    full[0, 100:200, 300:450] = True
    assert (res['height'], res['width']) == (400, 600)
    np.testing.assert_array_equal(decode(res['masks']), full)


def test_folder_listing_mentions_what_it_does_not_read(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / 'anim.gif').write_bytes(b'GIF89a')
    os.symlink('loop.png', tmp_path / 'loop.png')  # a link to itself
    os.makedirs(tmp_path / 'sub')
    os.symlink('..', tmp_path / 'sub' / 'up')  # a folder loop for '**'
    ignored = []
    assert expand_inputs(str(tmp_path), ignored) == [str(tmp_path / 'a.png')]
    assert [(osp.basename(p), r.split(':')[0]) for p, r in ignored] == [
        ('anim.gif', 'GIF is not read'), ('loop.png', 'a symbolic link that does not resolve '
                                                      '(dangling, or a loop)')]
    ignored = []
    files = expand_inputs(str(tmp_path / '**' / '*.png'), ignored)
    assert files == [str(tmp_path / 'a.png')]
    assert any('the same file as' in r for _, r in ignored)


def test_class_ids_from_files_win_over_assigned_ones():
    ids, prov = OrderedDict(), set()
    register_class(ids, prov, 'mug', None)       # add_reference(..., 'mug')
    register_class(ids, prov, 'kettle', None)
    register_class(ids, prov, 'mug', 7)          # refs.json: mug is 7
    register_class(ids, prov, 'plate', 2)        # refs.json: plate takes kettle's 2
    assert dict(ids) == {'mug': 7, 'kettle': 8, 'plate': 2} and prov == {'kettle'}
    assert list(ids) == ['mug', 'kettle', 'plate']  # labels keep the registration order
    with pytest.raises(ValueError, match="class 'mug' already has category id 7, not 9"):
        register_class(ids, prov, 'mug', 9)
    with pytest.raises(ValueError, match="category id 2 of 'cup' is already used by 'plate'"):
        register_class(ids, prov, 'cup', 2)


def _logged(fn):
    """(what ``fn()`` returned, the messages it logged through the current logger)."""
    logger, h = MMLogger.get_current_instance(), _Keep()
    logger.addHandler(h)
    try:
        return fn(), h.messages
    finally:
        logger.removeHandler(h)


def test_reference_boxes_are_checked_against_the_real_image(tmp_path):
    """A file declaring 902x600 for a 451x300 photo: its boxes are checked against 451x300
    (fully outside: an error; partly: clipped with a warning naming both sizes)."""
    cv2.imwrite(str(tmp_path / 'photo.png'), np.zeros((300, 451, 3), np.uint8))
    doc = _refs_doc(bbox=[500, 350, 300, 200])
    doc['images'][0].update(file_name='photo.png', height=600, width=902)
    path = tmp_path / 'refs.json'
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r'annotation 11, field .bbox.: box \[500.0, 350.0, '
                                         r'800.0, 550.0\] \(xyxy\) lies fully outside its '
                                         '451x300 image'):
        read_coco_references(str(path))
    doc['annotations'][0]['bbox'] = [400, 250, 100, 100]
    path.write_text(json.dumps(doc))
    (refs, _), logs = _logged(lambda: read_coco_references(str(path)))
    np.testing.assert_array_equal(refs[0]['bbox'], [400, 250, 451, 300])
    assert refs[0]['img_hw'] == (300, 451)
    assert any("'photo.png' declares 902x600, is 451x300" in m for m in logs), logs
    assert any('1 reference boxes' in m and 'clipped' in m and 'annotation 11' in m
               for m in logs), logs
    # a box of add_reference partly outside its image: clipped with a warning
    (box, _, _), logs = _logged(lambda: prompt_to_box((300, 451), box=[400, 250, 500, 350]))
    np.testing.assert_array_equal(box, [400, 250, 451, 300])
    assert any('partly outside the 451x300 image' in m for m in logs), logs


def test_reference_sizes_follow_exif_orientation(tmp_path):
    """A JPEG stored 600x400 with EXIF orientation 6 (turned 90 degrees) is 400x600 as
    decoded: a file declaring its stored size has its boxes checked against 400x600."""
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new('RGB', (600, 400)).save(tmp_path / 'turned.jpg', exif=exif)
    assert cv2.imread(str(tmp_path / 'turned.jpg')).shape[:2] == (600, 400)  # the decoder
    doc = _refs_doc(bbox=[450, 10, 100, 100])
    doc['images'][0].update(file_name='turned.jpg', height=400, width=600)
    path = tmp_path / 'refs.json'
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match='fully outside its 400x600 image'):
        read_coco_references(str(path))
    doc['annotations'][0]['bbox'] = [10, 450, 100, 100]  # inside the turned image only
    path.write_text(json.dumps(doc))
    (refs, _), logs = _logged(lambda: read_coco_references(str(path)))
    np.testing.assert_array_equal(refs[0]['bbox'], [10, 450, 110, 550])
    assert any("'turned.jpg' declares 600x400, is 400x600" in m for m in logs), logs


def test_unreadable_inputs_say_what_to_do_with_a_folder(tmp_path):
    """An image of a folder or a list has no annotation file to remove it from."""
    from mmsamantics.apis.inputs import read_image
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(ValueError) as e:
        read_image(str(tmp_path / 'broken.png'))
    assert 'cannot be decoded' in str(e.value) and 'leave it out' in str(e.value)
    assert 'annotation file' not in str(e.value)
    with pytest.raises(FileNotFoundError) as e:
        read_image(str(tmp_path / 'gone.png'))
    assert 'annotation file' not in str(e.value) and 'data_root' not in str(e.value)
