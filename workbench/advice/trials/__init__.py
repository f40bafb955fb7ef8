"""Trials: the advisor's candidates scored on held-out training images, and the pick.

A trial is a run plan with a budget. The advisor samples the training split (stratified, seeded),
runs the pretrained backbone over it once at the input size the user will train at, and scores:

- linear probes (logistic regression, C chosen inside each fold) on the pooled output of every
  stage, averaged (GAP) and on a 2x2 grid, k-fold over the sample (`quick` and `thorough`);
- short fine-tuning runs on one held-out fold at a low input size (`fidelity`), predicted for
  the user's size as the best probe plus fine-tuning's gain over it at the low size: `quick`,
  the whole network with one LR on the sample (up to 1000 images); `thorough`, also LRs
  decaying per stage, the textbook partial freeze, LP-FT (the probe's head first), from scratch
  when the set is large enough; a step budget, early stopping on the held-out fold, BatchNorm
  trained.

The pick is the best held-out score unless a cheaper candidate is within its uncertainty. Pooled
features and results are cached (`paths.cache_dir()/advice/`): asking again is instant.

Modules: `report` (Trial, TrialsReport, the pick rule), `cache`, `probes`, `finetune`,
`fidelity` (low-size trials and their prediction), `run` (the whole set of trials).
"""

from workbench.advice.trials.finetune import Candidate, finetune_candidates, step_budget
from workbench.advice.trials.probes import larger_size, size_hint
from workbench.advice.trials.report import COST, Budget, Trial, TrialsReport, apply_settings, choose
from workbench.advice.trials.run import iter_trials, trial_plan

__all__ = ["COST", "Budget", "Candidate", "Trial", "TrialsReport", "apply_settings", "choose",
           "finetune_candidates", "iter_trials", "larger_size", "size_hint", "step_budget",
           "trial_plan"]
