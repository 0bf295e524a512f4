"""tools/analysis/benchmark_gpu.py: its pieces at tiny sizes on CPU (the GPU numbers come
from tools/gpu_selfcheck.sh on a GPU machine)."""
import torch

from helpers import load_tool

bench_gpu = load_tool('tools/analysis/benchmark_gpu.py')


def test_random_weights_everywhere():
    model = dict(backbone=dict(checkpoint='a.pth'),
                 heads=[dict(decoder=dict(checkpoint='b.pth')), dict(x=1)])
    bench_gpu._no_checkpoints(model)
    assert model == dict(backbone=dict(checkpoint=None),
                         heads=[dict(decoder=dict(checkpoint=None)), dict(x=1)])


def test_encoder_rows_and_table():
    bench = bench_gpu.Bench(torch.device('cpu'), iters=1, warmup=0)
    bench_gpu.bench_encoders(bench, ('tiny', ), (2, ))
    modes = list(bench_gpu.encoder_modes(torch.device('cpu')))
    assert [(r['what'], r['mode'], r['batch']) for r in bench.rows] == [
        ('SAM tiny encoder 256px', m, 2) for m in modes]
    for r in bench.rows:  # rate and ms per image are two views of one median time
        assert abs(r['rate'] * r['ms'] - 2 * 1e3 / 2) < 0.01 * r['rate'] * r['ms']
    bench.add('x', 'y', 8, None, None)  # out of memory
    table = bench_gpu.markdown(bench.rows, 'CPU').splitlines()
    assert table[2] == '| what | mode | batch | rate | ms per image / step | peak GiB | note |'
    assert table[-1] == '| x | y | 8 | - | - | - | out of memory |'
    assert len(table) == 4 + len(modes) + 1
