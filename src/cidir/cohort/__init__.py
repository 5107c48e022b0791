"""Cohorts: many pairs from one manifest, on a local process pool, resumable, failures
isolated (``cidir cohort``)."""

from cidir.cohort.manifest import PairSpec, read_manifest
from cidir.cohort.pair_task import PairTask, derive_seed, run_pair
from cidir.cohort.runner import CohortResult, plan_tasks, run_cohort

__all__ = ["CohortResult", "PairSpec", "PairTask", "derive_seed", "plan_tasks",
           "read_manifest", "run_cohort", "run_pair"]
