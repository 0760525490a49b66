"""VPLR propagation: the motion model G, the sampling T, and LP / JP dataset synthesis.

    from paperlib.propagation import MotionNet, dis_flow, warp, synthesize, exact_flow, flow_motion
    pairs = synthesize(clip.frames, clip.labels[19], 19, 3, flow_motion(exact_flow(clip)), joint=True)

Training sets on disk (``dataset``) and G's self-supervised training (``motion.train_motion``)::

    from paperlib.propagation import propagated_train_set, train_motion, motion_defaults
    G = train_motion(cfg, "reconstruction", **motion_defaults(cfg.profile))     # cached
    train_set = propagated_train_set(cfg, motion="vrec", joint=True, k=3)      # real + +-3
    engine.train(cfg, train_set=train_set, val_set=...)
"""
from .motion import (MODES, MOTION_DEFAULTS, MotionNet, dis_flow, make_optimizer, motion_defaults,
                     motion_inputs, motion_loss, train_motion, training_example)
from .dataset import (MOTIONS, SequenceFrames, export_propagated, motion_model_for,
                      propagated_train_set, read_samples, sequence_root)
from .synthesize import (Propagated, dis_flows, exact_flow, flow_motion, model_motion,
                         pixel_accuracy, propagate, synthesize)
from .warp import warp, warp_image_np, warp_label_np, warp_labels

__all__ = ["MODES", "MOTION_DEFAULTS", "MOTIONS", "MotionNet", "SequenceFrames", "export_propagated",
           "motion_defaults", "motion_model_for", "propagated_train_set", "read_samples", "sequence_root",
           "train_motion", "dis_flow", "make_optimizer", "motion_inputs", "motion_loss",
           "training_example", "Propagated", "dis_flows", "exact_flow", "flow_motion",
           "model_motion", "pixel_accuracy", "propagate", "synthesize", "warp", "warp_image_np",
           "warp_label_np", "warp_labels"]
