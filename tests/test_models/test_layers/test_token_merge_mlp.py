import pytest
import torch

from mmsamantics.models import TokenMergeMLP


def test_paper_parameter_count_and_shapes():
    mlp = TokenMergeMLP(num_tokens=5, token_dim=256, hidden_dims=(1024, 1024), out_dim=256)
    assert sum(p.numel() for p in mlp.parameters()) == 2_623_744
    assert mlp(torch.randn(3, 5, 256)).shape == (3, 256)
    sam = TokenMergeMLP(num_tokens=4)
    assert sam(torch.randn(2, 4, 256)).shape == (2, 256)
    with pytest.raises(ValueError, match=r'expected reference tokens \(R, 4, 256\)'):
        sam(torch.randn(2, 5, 256))


def test_is_flatten_then_gelu_mlp():
    mlp = TokenMergeMLP(num_tokens=2, token_dim=3, hidden_dims=(4,), out_dim=5)
    x = torch.randn(7, 2, 3)
    lin1, lin2 = mlp.mlp[0], mlp.mlp[2]
    ref = lin2(torch.nn.functional.gelu(lin1(x.reshape(7, 6))))
    assert torch.allclose(mlp(x), ref)
