"""The input-size contract shared by the frozen SAM-family image encoders."""
from torch import Tensor


def check_square_input(x: Tensor, img_size: int, name: str) -> None:
    """Refuse (B, 3, H, W) inputs that are not ``img_size`` square, naming the fix."""
    if x.shape[-2:] != (img_size, img_size):
        raise ValueError(
            f'{name} expects {img_size}x{img_size} inputs, got {tuple(x.shape[-2:])}: resize '
            f'the longest side to {img_size} (Resize(scale=({img_size}, {img_size}), '
            f'keep_ratio=True)) and pad with pad_size_divisor={img_size} in the data '
            'preprocessor.')
