"""Analyses of trained models (paper figures); the CLIs live in tools/analysis/."""
from .class_code import ClassCodeInSAMDETR
from .leaderboard import (TestSpeedHook, leaderboard_markdown, parameter_counts,
                          plot_leaderboard, summarize_leaderboard)
from .query_confusion import confusion_table, query_confusion
from .tsne import (Instance, InstanceSet, analyse, backbone_features, build_backbone,
                   instance_mask, load_instances, masked_average, model_input_size,
                   nearest_neighbour_accuracy, plot_embedding, reference_features, run_tsne,
                   silhouette_report)

__all__ = ['ClassCodeInSAMDETR', 'TestSpeedHook', 'leaderboard_markdown', 'parameter_counts',
           'plot_leaderboard', 'summarize_leaderboard', 'Instance', 'InstanceSet', 'analyse', 'backbone_features',
           'build_backbone', 'instance_mask', 'load_instances', 'masked_average',
           'model_input_size', 'plot_embedding', 'reference_features', 'run_tsne',
           'silhouette_report', 'nearest_neighbour_accuracy', 'confusion_table',
           'query_confusion']
