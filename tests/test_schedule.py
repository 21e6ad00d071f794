"""Which evaluation of a fit is under way (start, intermediate, final), and the loader that follows it."""

from types import SimpleNamespace

import numpy as np

from faceunlearn.data.samplers import PhasedBatchSampler
from faceunlearn.schedule import FINAL, INTERMEDIATE, START, evaluation_phase


def _trainer(fn="fit", step=0, epoch=0, max_epochs=4, max_steps=-1, last_batch=False):
    epoch_loop = SimpleNamespace(batch_progress=SimpleNamespace(is_last_batch=last_batch))
    return SimpleNamespace(state=SimpleNamespace(fn=fn), global_step=step, current_epoch=epoch, max_epochs=max_epochs,
                           max_steps=max_steps, fit_loop=SimpleNamespace(epoch_loop=epoch_loop))


def test_evaluation_phase():
    assert evaluation_phase(None) == FINAL
    assert evaluation_phase(_trainer(fn="validate", step=7)) == FINAL
    assert evaluation_phase(_trainer(fn="test")) == FINAL
    assert evaluation_phase(_trainer(step=0)) == START
    assert evaluation_phase(_trainer(step=100, epoch=0, last_batch=True)) == INTERMEDIATE
    assert evaluation_phase(_trainer(step=300, epoch=2, last_batch=True)) == INTERMEDIATE
    assert evaluation_phase(_trainer(step=400, epoch=3, last_batch=True)) == FINAL
    assert evaluation_phase(_trainer(step=350, epoch=3, last_batch=False)) == INTERMEDIATE  # mid-epoch check
    assert evaluation_phase(_trainer(step=50, epoch=0, max_steps=50)) == FINAL
    assert evaluation_phase(_trainer(step=49, epoch=0, max_steps=50)) == INTERMEDIATE


def test_phased_batch_sampler_yields_the_phase_asked_when_iterated():
    phase = {"now": START}
    sampler = PhasedBatchSampler({START: np.array([5, 1, 3]), INTERMEDIATE: np.array([2]), FINAL: np.arange(7)},
                                 batch_size=2, phase=lambda: phase["now"])
    assert list(sampler) == [[1, 3], [5]]
    phase["now"] = INTERMEDIATE
    assert list(sampler) == [[2]]
    phase["now"] = FINAL
    assert list(sampler) == [[0, 1], [2, 3], [4, 5], [6]]
    assert len(sampler) == 4  # the largest phase's
