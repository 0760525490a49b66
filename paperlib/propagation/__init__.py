"""VPLR propagation: the motion model G, the sampling T, and LP / JP dataset synthesis.

    from paperlib.propagation import MotionNet, dis_flow, warp, synthesize, exact_flow, flow_motion
    pairs = synthesize(clip.frames, clip.labels[19], 19, 3, flow_motion(exact_flow(clip)), joint=True)
"""
from .motion import (MODES, MotionNet, dis_flow, make_optimizer, motion_inputs, motion_loss,
                     training_example)
from .synthesize import (Propagated, dis_flows, exact_flow, flow_motion, model_motion,
                         pixel_accuracy, propagate, synthesize)
from .warp import warp, warp_image_np, warp_label_np, warp_labels

__all__ = ["MODES", "MotionNet", "dis_flow", "make_optimizer", "motion_inputs", "motion_loss",
           "training_example", "Propagated", "dis_flows", "exact_flow", "flow_motion",
           "model_motion", "pixel_accuracy", "propagate", "synthesize", "warp", "warp_image_np",
           "warp_label_np", "warp_labels"]
