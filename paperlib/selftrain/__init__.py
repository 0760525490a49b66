"""Self-training (Zhu et al., 2020) and CSST (Zhu et al., TPAMI): teacher -> pseudo labels ->
student, centroid sampling, fast crop schedules and the self-training alternatives.

- ``pseudo``: generate hard / soft pseudo labels (resumable, compact) and read them back as a
  ``SegDataset`` (``PseudoLabelDataset``);
- ``pipeline``: the real:pseudo mix per epoch (``mix_real_pseudo``, duplicated-real control) and
  the three-stage ``self_train``;
- ``schedules``: crop-size schedules of Sec. 3.3 (coarse2fine, fine2coarse, ...);
- ``alternatives``: consistency regularization, teacher fine-tuning, soft labels, model
  regularizer (CSST Sec. 3.1.1).
"""
from __future__ import annotations

from .pipeline import MixedDataset, mix_counts, mix_real_pseudo, self_train, unlabelled, world_pool
from .pseudo import (PseudoLabelDataset, PseudoLabelError, generate_pseudo_labels, label_agreement,
                     load_soft, pseudo_label_quality, teacher_fingerprint)

__all__ = ["MixedDataset", "PseudoLabelDataset", "PseudoLabelError", "generate_pseudo_labels", "label_agreement",
           "load_soft", "mix_counts", "mix_real_pseudo", "pseudo_label_quality", "self_train",
           "teacher_fingerprint", "unlabelled", "world_pool"]
