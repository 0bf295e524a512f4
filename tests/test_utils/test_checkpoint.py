"""A missing weight file named relative to the working folder says where it was looked up."""
import os

import pytest
import torch

import mmsamantics.utils.checkpoint as checkpoint
from mmsamantics.engine.preflight import missing_files_error
from mmsamantics.utils.checkpoint import MissingResourceError, load_state_dict_file


def test_a_relative_path_names_the_working_and_the_project_folder(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / 'project', tmp_path / 'elsewhere'
    (project / 'checkpoints').mkdir(parents=True)
    (project / 'checkpoints' / 'sam_tiny_toy.pth').write_bytes(b'')
    elsewhere.mkdir()
    monkeypatch.setattr(checkpoint, 'PROJECT_ROOT', str(project))
    monkeypatch.chdir(elsewhere)
    with pytest.raises(MissingResourceError) as e:
        load_state_dict_file('checkpoints/sam_tiny_toy.pth', 'create it with pretrain.py')
    msg = str(e.value)
    assert f"looked up from the working folder '{os.getcwd()}'" in msg
    assert f"the project folder '{project}' has it: run from there" in msg
    assert 'create it' not in msg  # the file exists: creating it again would mislead
    with pytest.raises(MissingResourceError) as e:
        load_state_dict_file('checkpoints/other.pth', 'create it with pretrain.py')
    assert 'working folder' in str(e.value) and 'project folder' not in str(e.value)
    assert 'create it with pretrain.py' in str(e.value)
    with pytest.raises(MissingResourceError) as e:
        load_state_dict_file(str(elsewhere / 'x.pth'))
    assert 'working folder' not in str(e.value)  # an absolute path is where it says
    err = missing_files_error(["checkpoint 'checkpoints/sam_tiny_toy.pth' (model.backbone."
                               'checkpoint) not found'], 'this config', 'Put weights.', 'Data.')
    assert f"Relative paths were looked up from the working folder '{os.getcwd()}'" in str(err)
    assert f"the project folder '{project}' has it" in str(err)


def test_files_are_memory_mapped_and_old_format_files_still_load(tmp_path):
    """A current-format file is mapped (its tensors share the file's pages, not a copy);
    one in torch's pre-1.6 format, which cannot be mapped, is read whole, with the same
    values; a corrupt file says so."""
    state = {'a.weight': torch.arange(6.).reshape(2, 3), 'b': torch.ones(2)}
    torch.save({'state_dict': state}, tmp_path / 'new.pth')
    torch.save({'model': state}, tmp_path / 'old.pth', _use_new_zipfile_serialization=False)
    new = load_state_dict_file(str(tmp_path / 'new.pth'))
    old = load_state_dict_file(str(tmp_path / 'old.pth'))
    for got in (new, old):
        assert list(got) == list(state) and all(torch.equal(got[k], state[k]) for k in state)
    with open('/proc/self/maps') as f:  # the process maps the new file, not the old one
        maps = f.read()
    assert str(tmp_path / 'new.pth') in maps and str(tmp_path / 'old.pth') not in maps
    (tmp_path / 'bad.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='could not read checkpoint'):
        load_state_dict_file(str(tmp_path / 'bad.pth'))
