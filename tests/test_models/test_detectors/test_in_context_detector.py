"""InContextDetector: the reference store, the signature and the banks that every in-context
detector gets from its base, on a detector of one linear layer."""
import pytest
import torch
from torch import nn

from mmdet.registry import MODELS
from mmsamantics.models import InContextDetector
from mmsamantics.structures import signature_of, weights_fingerprint
from mmsamantics.structures.reference_bank import load_reference_bank


class LinearReferences(InContextDetector):
    """A reference is its key's hash through one frozen linear layer (F = (1, 4))."""

    reference_kind = 'linear'

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = nn.Linear(2, 4)
        self.mode = 'a'

    def signature_parts(self) -> dict:
        return dict(kind='LinearReferences', mode=self.mode, w=self.fingerprint(self.encoder))

    @property
    def reference_feature_shape(self):
        return (1, 4)

    def encode_references(self, refs, batch_size=4, scale=None):
        x = torch.tensor([[len(r['key']), 1.0] for r in refs])
        with torch.no_grad():
            return [r['key'] for r in refs], self.encoder(x)[:, None]

    def _reference_namespace(self):
        return self.mode

    def loss(self, *a):
        raise NotImplementedError

    def predict(self, *a):
        raise NotImplementedError

    def _forward(self, *a):
        raise NotImplementedError

    def extract_feat(self, *a):
        raise NotImplementedError


def build(**kwargs) -> LinearReferences:
    torch.manual_seed(0)
    return LinearReferences(**kwargs)


def test_store_settings_and_the_keys_of_earlier_configs():
    model = build()
    store = model.reference_store
    assert (store.max_entries, store.cache_dtype, str(store.cache_device), store.bank_file) == (
        100_000, torch.float32, 'cpu', None)
    model = build(reference_store=dict(cache_size=3, cache_dtype='float16'))
    assert (model.reference_store.max_entries, model.reference_store.cache_dtype) == (
        3, torch.float16)
    with pytest.warns(FutureWarning, match='model.ref_cache_size is now '
                                                'model.reference_store.cache_size'):
        model = build(ref_cache_size=7, reference_bank=None)
    assert model.reference_store.max_entries == 7
    with pytest.raises(ValueError, match=r"unknown reference_store keys \['size'\]"):
        build(reference_store=dict(size=3))
    with pytest.raises(ValueError, match="cache_dtype must be 'float32'"):
        build(reference_store=dict(cache_dtype='int8'))


def test_signature_is_memoised_per_weights_and_follows_the_parts():
    model = build()
    want = signature_of(dict(kind='LinearReferences', mode='a',
                             w=weights_fingerprint(model.encoder)))
    assert model.cache_signature == want
    model.mode = 'b'  # a switchable setting enters the signature and the cache namespace
    assert model.cache_signature != want
    model.mode = 'a'
    model.reference_store.get(['k1'], lambda keys: model.encode_references(
        [dict(key=k) for k in keys])[1])
    assert model.reference_store.cached_keys() == ['k1']
    other = build()
    with torch.no_grad():
        other.encoder.weight.add_(1.0)
    model.load_state_dict(other.state_dict())  # new weights: fingerprint and cache forgotten
    assert model.cache_signature == other.cache_signature != want
    assert model.reference_store.cached_keys() == []


def test_bank_round_trip_and_refusals(tmp_path):
    model = build()
    keys, feats = model.encode_references([dict(key='a'), dict(key='bb')])
    path = str(tmp_path / 'bank.pth')
    model.save_bank(path, keys, ['x', 'y'], feats, meta=dict(shots=1))
    raw = load_reference_bank(path)
    assert raw['meta'] == dict(shots=1, kind='linear')
    assert raw['signature'] == model.cache_signature
    bank = model.load_bank(path)
    torch.testing.assert_close(bank['tokens'], feats)
    model.reference_bank = path  # the store reads it lazily: no encoding needed
    got = model.reference_store.get(['bb', 'a'], encode=None)
    torch.testing.assert_close(got, feats[[1, 0]])
    model.mode = 'b'
    with pytest.raises(ValueError, match='was made with another weights or preprocessing'):
        model.load_bank(path)
    model.mode = 'a'
    wrong = str(tmp_path / 'wrong.pth')
    model.save_bank(wrong, keys, ['x', 'y'], torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match=r'features of shape \(1, 3\); this model uses '
                                         r'\(1, 4\)'):
        model.load_bank(wrong)
    with pytest.raises(ValueError, match='made with another model'):
        model.load_bank(path, signature='0123456789abcdef')


def test_every_detector_of_the_package_is_one():
    for name in ('InSAMDETR', 'SAMDINOv2Matcher', 'PerSAM', 'SAMIC', 'SAM3ExemplarDetector'):
        assert issubclass(MODELS.get(name), InContextDetector), name
