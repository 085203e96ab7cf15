"""sparsert.prune: make a PyTorch model sparse before sparsert compiles it. Pure PyTorch.

    import sparsert.prune as prune
    prune.one_shot(model, prune.taylor(model, batches, F.cross_entropy), density=0.2)  # 80% zeros
    ... fine-tune as usual: masked weights stay zero ...
    prune.remove(model)   # an ordinary nn.Module again, zeros baked into its weights

The result is what ``sparsert.load`` is for: it compiles the model with a sparse format per
layer.

Each step in its own module, all working on weights named as in the model's state dict
(``"fc1.weight"``):

- :mod:`~sparsert.prune.criteria` scores every weight: ``magnitude``, ``random``, ``taylor``,
  ``fisher`` (Optimal Brain Damage), ``wanda``, ``Movement``; ``apoz`` scores ReLU units.
  :mod:`~sparsert.prune.reconstruction` (``sparsegpt``) prunes Linear layers in one shot and
  updates the remaining weights to compensate. :mod:`~sparsert.prune.regularizers` (L1,
  group lasso, L0 gates) make weights prunable during training.
- :mod:`~sparsert.prune.patterns` turns scores into masks (``unstructured``, ``nm``,
  ``blocks``); :mod:`~sparsert.prune.masks` puts them on the model (``apply``, ``remove``,
  ``current_masks``) via torch.nn.utils.prune; :mod:`~sparsert.prune.structured` removes whole
  neurons, channels and heads, giving a smaller model.
- :mod:`~sparsert.prune.schedules` decides when and how much: ``one_shot``, ``gradual``
  (cubic), ``iterative``, ``lottery_ticket`` (with ``Rewind``).
- :mod:`~sparsert.prune.plan` decides what pays on this machine: ``plan`` picks a pattern and
  density per layer from sparsert's cost model to reach a target speed-up or latency while
  removing the least importance; ``apply(model, plan)`` carries the ``Plan`` out.

Requires torch; ``import sparsert`` alone does not import it (``sparsert.prune`` imports this
package on first use).
"""

from __future__ import annotations

from .criteria import Movement, apoz, fisher, magnitude, random, taylor, wanda
from .masks import apply, current_masks, remove
from .patterns import blocks, nm, unstructured
from .plan import LayerPlan, Plan, TargetOutOfReach, plan
from .regularizers import HardConcreteGate, add_l0_gates, group_lasso_penalty, l0_penalty, l1_penalty
from .schedules import Rewind, cubic_density, gradual, iterative, lottery_ticket, one_shot
from .reconstruction import sparsegpt, sparsegpt_layer
from .structured import PrunedMultiheadAttention, group_scores, keep_top, prune_heads, prune_mha, prune_units

__all__ = [
    "HardConcreteGate",
    "LayerPlan",
    "Movement",
    "Plan",
    "PrunedMultiheadAttention",
    "Rewind",
    "TargetOutOfReach",
    "add_l0_gates",
    "apoz",
    "apply",
    "blocks",
    "cubic_density",
    "current_masks",
    "fisher",
    "gradual",
    "group_lasso_penalty",
    "group_scores",
    "iterative",
    "keep_top",
    "l0_penalty",
    "l1_penalty",
    "lottery_ticket",
    "magnitude",
    "nm",
    "one_shot",
    "plan",
    "prune_heads",
    "prune_mha",
    "prune_units",
    "random",
    "remove",
    "sparsegpt",
    "sparsegpt_layer",
    "taylor",
    "unstructured",
    "wanda",
]
