"""GSVNet (fast video segmentation): the propagation framework PF and the keyframe loop.

``gsvnet``: lightweight flow net O, Eq. 1 warping in segmentation space, ideal-delay kernels,
intra network phi, guided spatially-varying convolution (Eq. 2), ``GSVNet`` (= PF).
``loop``: keyframe schedule, ``segment_video``, the avg / min mIoU protocol (Sec. 4.1) and the
training of the non-keyframe part.
"""
from .gsvnet import (GSVNet, GuidedSVConv, GuidingNetwork, IdealDelayKernels, IntraNet, LightFlowNet,
                     SegmentationWarp, backward_warp, edge_map, guided_filter, ideal_delay_offsets,
                     nonkey_complexity, normalize_guidance, resize_flow)
from .loop import (KeyframeSegmenter, evaluate_intervals, flow_tensor, frame_tensor, interval_pairs,
                   keyframe_schedule, miou_by_position, nonkey_loss, propagate, sample_sequences, segment_video,
                   train_nonkey, write_overlay_video)

__all__ = [
    # gsvnet
    "GSVNet", "GuidedSVConv", "GuidingNetwork", "IdealDelayKernels", "IntraNet", "LightFlowNet", "SegmentationWarp",
    "backward_warp", "edge_map", "guided_filter", "ideal_delay_offsets", "nonkey_complexity", "normalize_guidance",
    "resize_flow",
    # loop
    "KeyframeSegmenter", "evaluate_intervals", "flow_tensor", "frame_tensor", "interval_pairs", "keyframe_schedule",
    "miou_by_position", "nonkey_loss", "propagate", "sample_sequences", "segment_video", "train_nonkey",
    "write_overlay_video",
]
