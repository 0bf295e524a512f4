"""The reference-control table: drops per split, per-class deltas and wins, the pass rule."""
import pytest

from mmsamantics.evaluation import control_summary, per_class, split_derived
from mmsamantics.evaluation.control_report import control_markdown, control_tables

SPLITS = {'base': ['a x', 'b x'], 'novel': ['c y']}


def run(base, novel, classes):
    m = {'coco/bbox_mAP_50': (base + novel) / 2, 'coco/base_bbox_mAP_50': base,
         'coco/novel_bbox_mAP_50': novel, 'coco/reference_control': 'none'}
    m.update({f'coco/bbox_mAP_50/{c}': v for c, v in classes.items()})
    return m


RIGHT = run(0.6, 0.4, {'a x': 0.8, 'b x': 0.4, 'c y': 0.4})


def test_summary_per_split_and_class():
    controls = {
        'cyclic': run(0.3, 0.1, {'a x': 0.5, 'b x': 0.1, 'c y': 0.1}),
        'random-0': run(0.2, 0.5, {'a x': 0.2, 'b x': 0.6, 'c y': 0.5}),
        'random-1': run(0.4, 0.1, {'a x': 0.4, 'b x': 0.2, 'c y': 0.1}),
    }
    s = control_summary(RIGHT, controls, SPLITS)
    assert list(s) == ['right', 'cyclic', 'random']
    assert s['right']['base'][0] == 0.6
    cyc = s['cyclic']
    assert cyc['base'] == [0.3, 0.0, 1] and cyc['base_drop'] == pytest.approx(0.5)
    assert cyc['base_class_delta'] == pytest.approx(0.3)  # (0.3 + 0.3) / 2
    assert cyc['base_class_wins'] == [2, 2] and cyc['novel_class_wins'] == [1, 1]
    assert cyc['pass']
    rnd = s['random']
    assert rnd['runs'] == ['random-0', 'random-1']
    assert rnd['base'][0] == pytest.approx(0.3) and rnd['base'][1] == pytest.approx(0.1414, 1e-3)
    # per class, the seeds are averaged first: a x 0.8 - 0.3, b x 0.4 - 0.4 (no win)
    assert rnd['base_class_delta'] == pytest.approx(0.25)
    assert rnd['base_class_wins'] == [1, 2]
    # novel: 0.4 - mean(0.5, 0.1) = 0.1 > 0, so it passes per class on average
    assert rnd['novel_class_delta'] == pytest.approx(0.1) and rnd['pass']
    assert rnd['novel_drop'] == pytest.approx(0.25)  # 0.4 -> mean(0.5, 0.1) = 0.3
    md = control_markdown(s)
    assert '| random (2 seeds) | 0.300 ± 0.141 |' in md and '**no**' not in md


def test_a_control_the_model_ignores_fails():
    same = control_summary(RIGHT, {'same-attribute': dict(RIGHT)}, SPLITS)
    assert same['same-attribute']['base_class_delta'] == 0 and not same['same-attribute']['pass']
    assert '| same-attribute |' in control_markdown(same) and '**no**' in control_markdown(same)


def test_derived_keys_split_into_runs():
    metrics = dict(RIGHT)
    metrics.update({'coco/cyclic/bbox_mAP_50': 0.1, 'coco/cyclic/bbox_mAP_50/a x': 0.2,
                    'coco/same-kind/base_bbox_mAP_50': 0.3})
    right, controls = split_derived(metrics)
    assert right == RIGHT
    assert controls == {'cyclic': {'coco/bbox_mAP_50': 0.1, 'coco/bbox_mAP_50/a x': 0.2},
                        'same-kind': {'coco/base_bbox_mAP_50': 0.3}}
    assert per_class(controls['cyclic']) == {'a x': 0.2}


def test_summaries_of_the_runs_with_derived_controls():
    from mmsamantics.evaluation import derived_control_summaries
    cyclic = run(0.3, 0.1, {'a x': 0.5, 'b x': 0.1, 'c y': 0.1})
    with_controls = dict(RIGHT, **{k.replace('coco/', 'coco/cyclic/'): v
                                   for k, v in cyclic.items() if k != 'coco/reference_control'})
    got = derived_control_summaries({'open_1shot': with_controls, 'oracle': RIGHT}, SPLITS)
    assert got == {'open_1shot': control_summary(RIGHT, {'cyclic': split_derived(
        with_controls)[1]['cyclic']}, SPLITS)}
    assert got['open_1shot']['cyclic']['base_drop'] == pytest.approx(0.5)


def test_tables_of_a_sweep_average_the_seeds():
    recs = [dict(mode='open', shots=1, seed=s, ref_control=c, metrics=m) for s, c, m in (
        (42, None, RIGHT), (123, None, run(0.4, 0.4, {'a x': 0.6, 'b x': 0.2, 'c y': 0.4})),
        (42, 'shuffled', run(0.1, 0.1, {'a x': 0.1, 'b x': 0.1, 'c y': 0.1})),
        (123, 'cyclic', run(0.3, 0.1, {'a x': 0.3, 'b x': 0.3, 'c y': 0.1})))]
    md, data = control_tables(recs, SPLITS)
    s = data['open/1-shot']
    assert s['right']['base'][0] == pytest.approx(0.5)  # (0.6 + 0.4) / 2
    assert s['cyclic']['base'][0] == pytest.approx(0.2)  # 'shuffled' is 'cyclic'
    assert s['cyclic']['base_drop'] == pytest.approx(0.6)
    assert 'open, 1-shot (2 reference set(s))' in md
