"""GSVNet (fast video segmentation): the propagation framework PF and the keyframe loop.

``gsvnet``: lightweight flow net O, Eq. 1 warping in segmentation space, ideal-delay kernels,
intra network phi, guided spatially-varying convolution (Eq. 2), ``GSVNet`` (= PF).
``loop``: keyframe schedule, ``segment_video``, the avg / min mIoU protocol (Sec. 4.1) and the
training of the non-keyframe part.
``train``: trained keyframe networks and PF variants cached on disk, flow-net pre-training,
``video_setup`` (keyframe nets + clips of the notebooks).
``alite``: A-Lite (Accel's feature-space propagation with GSVNet's light networks, Fig. 3).
"""
from .gsvnet import (GSVNet, GuidedSVConv, GuidingNetwork, IdealDelayKernels, IntraNet, LightFlowNet,
                     SegmentationWarp, backward_warp, edge_map, guided_filter, ideal_delay_offsets,
                     nonkey_complexity, normalize_guidance, resize_flow)
from .loop import (KeyframeSegmenter, evaluate_intervals, flow_tensor, frame_tensor, interval_metrics, interval_pairs,
                   keyframe_schedule, keyframe_step, miou_by_position, nonkey_loss, propagate, sample_sequences,
                   segment_video, save_overlay_video, train_nonkey, write_overlay_video)
from .train import (Curve, VideoSetup, cached_module, flow_epe, keyframe_cache_path, pretrain_flownet,
                    pretrained_flownet, pretrained_keyframe, trained_pf, video_setup)
from .alite import ALite, KeyframeFeatures, alite_complexity, trained_alite

__all__ = [
    # gsvnet
    "GSVNet", "GuidedSVConv", "GuidingNetwork", "IdealDelayKernels", "IntraNet", "LightFlowNet", "SegmentationWarp",
    "backward_warp", "edge_map", "guided_filter", "ideal_delay_offsets", "nonkey_complexity", "normalize_guidance",
    "resize_flow",
    # loop
    "KeyframeSegmenter", "evaluate_intervals", "flow_tensor", "frame_tensor", "interval_metrics", "interval_pairs", "keyframe_schedule",
    "keyframe_step",
    "miou_by_position", "nonkey_loss", "propagate", "sample_sequences", "save_overlay_video", "segment_video", "train_nonkey",
    "write_overlay_video",
    # train
    "Curve", "VideoSetup", "cached_module", "flow_epe", "keyframe_cache_path", "pretrain_flownet", "pretrained_flownet",
    "pretrained_keyframe", "trained_pf", "video_setup",
    # alite
    "ALite", "KeyframeFeatures", "alite_complexity", "trained_alite",
]
