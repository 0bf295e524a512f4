"""ReferenceStore: lookup order, LRU eviction, cloned entries, storage dtype, banks, reset."""
import copy

import pytest
import torch

from mmsamantics.structures import ReferenceStore, save_reference_bank


class Encoder:
    """Encodes key ``'k<i>'`` as a (2, 3) feature filled with i; records its calls."""

    def __init__(self) -> None:
        self.calls = []

    def __call__(self, keys):
        self.calls.append(list(keys))
        return torch.stack([torch.full((2, 3), float(k[1:])) for k in keys])


class Owner:
    """A stand-in for a detector: its signature can change."""

    def __init__(self, signature: str) -> None:
        self.sig = signature

    def signature(self) -> str:
        return self.sig


def feature(v: float) -> torch.Tensor:
    return torch.full((2, 3), v)


def test_lookup_order_lent_then_bank_then_cache_then_encode(tmp_path):
    owner = Owner('sig-a')
    bank = str(tmp_path / 'bank.pth')
    save_reference_bank(bank, ['k1', 'k2'], ['x', 'x'], torch.stack([feature(10.), feature(20.)]),
                        'sig-a')
    store = ReferenceStore(owner.signature, bank_file=bank, max_entries=10,
                           cache_dtype=torch.float32)
    enc = Encoder()
    # k2 and k3 are cached first (the bank is off), then the bank is switched on
    store.bank_file = None
    store.get(['k2', 'k3'], enc)
    assert enc.calls == [['k2', 'k3']]
    store.bank_file = bank
    with store.lending({'k1': feature(100.), 'k3': feature(300.)}):
        out = store.get(['k1', 'k2', 'k3', 'k4', 'k4'], enc)
    # k1: lent beats bank; k2: bank beats cache; k3: lent beats cache; k4: encoded once
    assert out[:, 0, 0].tolist() == [100., 20., 300., 4., 4.]
    assert enc.calls == [['k2', 'k3'], ['k4']]
    # outside the block the lent features are gone: k1 from the bank, k3 from the cache
    out = store.get(['k1', 'k3'], enc)
    assert out[:, 0, 0].tolist() == [10., 3.]
    assert enc.calls == [['k2', 'k3'], ['k4']]
    # neither lent nor bank features are cached
    assert store.cached_keys() == ['k2', 'k4', 'k3']


def test_lru_eviction_at_max_entries():
    store = ReferenceStore(max_entries=3, cache_dtype=torch.float32)
    enc = Encoder()
    store.get(['k1', 'k2', 'k3'], enc)
    assert store.cached_keys() == ['k1', 'k2', 'k3']
    store.get(['k1'], enc)  # k1 becomes the most recently used
    assert store.cached_keys() == ['k2', 'k3', 'k1']
    store.get(['k4'], enc)  # evicts k2, the least recently used
    assert store.cached_keys() == ['k3', 'k1', 'k4']
    assert len(store) == 3
    store.get(['k2'], enc)  # k2 was evicted: encoded again, evicting k3
    assert enc.calls == [['k1', 'k2', 'k3'], ['k4'], ['k2']]
    assert store.cached_keys() == ['k1', 'k4', 'k2']
    # a batch larger than the cache keeps its last keys, in lookup order
    store.get(['k5', 'k6', 'k7', 'k8'], enc)
    assert store.cached_keys() == ['k6', 'k7', 'k8']
    # 0 = no cache: everything is encoded every time
    off = ReferenceStore(max_entries=0)
    enc = Encoder()
    off.get(['k1'], enc)
    off.get(['k1'], enc)
    assert enc.calls == [['k1'], ['k1']] and len(off) == 0


def test_entries_are_clones_in_the_storage_dtype_and_device():
    store = ReferenceStore(max_entries=10)  # default: float16 on the CPU
    assert store.cache_dtype == torch.float16 and store.cache_device == torch.device('cpu')
    batch = torch.stack([feature(1.5), feature(2.25)])
    out = store.get(['a', 'b'], lambda keys: batch)
    assert out.dtype == torch.float32 and torch.equal(out, batch)
    batch.fill_(7.)  # mutating the encoder's batch does not reach the cache
    again = store.get(['a', 'b'])
    assert again.dtype == torch.float32
    assert again[:, 0, 0].tolist() == [1.5, 2.25]
    entry = store._cache[(None, 'a')]
    assert entry.dtype == torch.float16 and entry.device == torch.device('cpu')
    assert entry.shape == (2, 3) and entry.untyped_storage().nbytes() == 2 * 3 * 2
    # float16 storage rounds: 1/3 comes back as float16's nearest value
    store.get(['c'], lambda keys: torch.full((1, 2, 3), 1 / 3))
    assert store.get(['c'])[0, 0, 0].item() == 0.333251953125
    # results go to the requested dtype
    assert store.get(['a'], dtype=torch.float64).dtype == torch.float64


def test_tuple_features_and_namespaces():
    mode = {'value': 'dense'}

    class Model:
        def namespace(self):
            return mode['value']

    store = ReferenceStore(max_entries=10, cache_dtype=torch.float32,
                           namespace=Model().namespace)
    levels = lambda keys: (torch.ones(len(keys), 2), torch.zeros(len(keys), 3, 1))  # noqa
    out = store.get(['a', 'b', 'a'], levels)
    assert isinstance(out, tuple) and out[0].shape == (3, 2) and out[1].shape == (3, 3, 1)
    mode['value'] = 'crop'  # another namespace: nothing cached there yet
    assert store.cached_keys() == []
    with pytest.raises(KeyError, match=r"\['a'\] are neither lent, in the bank nor cached"):
        store.get(['a'])
    mode['value'] = 'dense'
    assert store.cached_keys() == ['a', 'b']


def test_bank_refused_on_signature_mismatch_and_rechecked(tmp_path):
    owner = Owner('sig-a')
    bank = str(tmp_path / 'bank.pth')
    save_reference_bank(bank, ['k1'], ['x'], feature(10.)[None], 'sig-a')
    store = ReferenceStore(owner.signature, bank_file=bank, made_with='SAM or preprocessing',
                           rebuild='tools/misc/encode_references.py')
    assert store.get(['k1'])[0, 0, 0].item() == 10.
    owner.sig = 'sig-b'  # e.g. the matcher switched feature mode: the bank is re-checked
    msg = (f"reference bank {bank!r} was made with another SAM or preprocessing (signature "
           'sig-a, this model sig-b). Rebuild it with this config and checkpoint '
           '(tools/misc/encode_references.py).')
    with pytest.raises(ValueError) as e:
        store.get(['k1'])
    assert str(e.value) == msg
    owner.sig = 'sig-a'
    assert store.get(['k1'])[0, 0, 0].item() == 10.
    # a store without a bank never asks for a signature
    assert ReferenceStore().bank() == {}


def test_check_signature_and_reset(tmp_path):
    owner = Owner('sig-a')
    store = ReferenceStore(owner.signature, max_entries=5, made_with='DINOv2',
                           rebuild='tools/misc/cache_embeddings.py')
    store.check_signature('sig-a', 'the SAM feature cache')
    with pytest.raises(ValueError) as e:
        store.check_signature('sig-x', 'the SAM feature cache')
    assert str(e.value) == ('the SAM feature cache was made with another DINOv2 (signature '
                            'sig-x, this model sig-a). Rebuild it with this config and '
                            'checkpoint (tools/misc/cache_embeddings.py).')
    enc = Encoder()
    store.get(['k1', 'k2'], enc)
    assert len(store) == 2 and store._checked == {('sig-a', 'sig-a')}
    store.reset()
    assert len(store) == 0 and store.cached_keys() == [] and store._checked == set()
    store.get(['k1'], enc)  # encoded again after the reset
    assert enc.calls == [['k1', 'k2'], ['k1']]


def test_spawn_and_deep_copy_follow_their_owner():
    owner = Owner('sig-a')
    store = ReferenceStore(owner.signature, max_entries=5)
    store.get(['k1'], Encoder())
    empty = store.spawn(max_entries=0)
    assert len(empty) == 0 and empty.max_entries == 0 and empty.signature == 'sig-a'
    # a bound method is deep-copied with its owner: the copy checks the copy's signature
    pair = copy.deepcopy((owner, store))
    pair[0].sig = 'sig-b'
    assert pair[1].signature == 'sig-b' and store.signature == 'sig-a'
    with pytest.raises(ValueError, match='max_entries must be >= 0'):
        ReferenceStore(max_entries=-1)
    with pytest.raises(ValueError, match='no reference key'):
        store.get([])
