"""Which evaluation of a fit is under way: the start model's, an intermediate one, or the final one.

Both the DataModule (which images its evaluation loader yields) and the evaluation callback (which
benchmarks it computes) ask this one pure function of the trainer's state, so they always agree
without talking to each other:

* ``START``: a fit at step 0 (the start model, evaluated when the fit starts);
* ``FINAL``: the last evaluation of a fit (the end of its last epoch, or ``max_steps`` reached), and
  every ``validate``/``test`` run;
* ``INTERMEDIATE``: any other evaluation during a fit (by default only the forget benchmarks:
  ``RetrievalEvaluation.intermediate_benchmarks``).
"""

from __future__ import annotations

START, INTERMEDIATE, FINAL = "start", "intermediate", "final"
PHASES = (START, INTERMEDIATE, FINAL)


def evaluation_phase(trainer) -> str:
    """``START``, ``INTERMEDIATE`` or ``FINAL`` for the evaluation ``trainer`` is running now."""
    if trainer is None or getattr(trainer.state, "fn", None) != "fit":
        return FINAL
    if trainer.global_step == 0:
        return START
    if trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps:
        return FINAL
    last_epoch = trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs - 1
    if last_epoch and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
        return FINAL
    return INTERMEDIATE
