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


def test_atomic_json_files_honour_the_umask(tmp_path):
    """Written like any file the user creates (0644 under umask 022), not mkstemp's 0600."""
    import os
    import stat

    from mmsamantics.utils.files import write_json_atomic
    old = os.umask(0o022)
    try:
        write_json_atomic(str(tmp_path / 'a.json'), [1])
        os.umask(0o077)
        write_json_atomic(str(tmp_path / 'b.json'), [1])
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'a.json').st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / 'b.json').st_mode) == 0o600


def test_writable_folder_check_names_the_option(tmp_path):
    from mmsamantics.utils.files import ensure_writable_folder
    ensure_writable_folder(str(tmp_path / 'new' / 'sub'), '--out-dir')
    assert (tmp_path / 'new' / 'sub').is_dir() and not list((tmp_path / 'new' / 'sub').iterdir())
    with pytest.raises(ValueError, match=r"--save-bank 'x' cannot be written \(.*'/proc/nope'"):
        ensure_writable_folder('/proc/nope', "--save-bank 'x'")
    (tmp_path / 'f').write_text('')
    with pytest.raises(ValueError, match='--vis: .* is a file, not a folder'):
        ensure_writable_folder(str(tmp_path / 'f'), '--vis')
