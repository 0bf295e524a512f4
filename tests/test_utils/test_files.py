import pytest

from mmsamantics.apis.references import read_coco_references
from mmsamantics.utils import MissingResourceError
from mmsamantics.utils.files import read_json


def test_read_json_names_the_file_and_the_fix(tmp_path):
    good = tmp_path / 'a.json'
    good.write_text('{"x": [1, 2]}')
    assert read_json(str(good), 'reference file') == {'x': [1, 2]}
    with pytest.raises(MissingResourceError, match=r"reference file not found: .*none.json'\. "
                                                   'make one'):
        read_json(str(tmp_path / 'none.json'), 'reference file', 'make one')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"x": ')
    with pytest.raises(ValueError, match=r"reference file .*bad.json' is not valid JSON"):
        read_json(str(bad), 'reference file')


def test_reference_files_use_it(tmp_path):
    bad = tmp_path / 'refs.json'
    bad.write_text('[1, 2')
    with pytest.raises(ValueError, match='is not valid JSON'):
        read_coco_references(str(bad))
    with pytest.raises(FileNotFoundError, match='reference file not found'):
        read_coco_references(str(tmp_path / 'none.json'))
