"""What an experiment file asks for once its study has ended: the study written to other tools
(`logging:`), then `biasvar:`, `confirm:` and `audit:` run as their commands would."""

from __future__ import annotations

from typing import Callable

from tunelab.spec import Spec
from tunelab.store import StudyPaths, read_trials
from tunelab.store.schema import STOPPED_EARLY


def run_follow_ups(spec: Spec, paths: StudyPaths, echo: Callable[[str], None]) -> None:
    write_to_other_tools(spec, paths, echo)
    if spec.biasvar is not None:
        from tunelab.biasvar.runner import run_biasvar

        asked = spec.biasvar
        run_biasvar(paths.root.parent, spec.name, top=asked.top, rounds=asked.rounds, method=asked.method,
                    learning_curve=asked.learning_curve, echo=echo)
    if spec.confirm is not None:
        from tunelab.trust.report import confirmation
        from tunelab.trust.runners import run_confirm

        run_confirm(paths.root.parent, spec.name, top=spec.confirm.top, seeds=spec.confirm.seeds,
                    resplit=spec.confirm.resplit, echo=echo)
        confirmed = confirmation(paths)
        if confirmed is not None:
            echo(confirmed.sentence)
    if spec.audit is not None and (read_trials(paths)["status"] == STOPPED_EARLY).any():
        from tunelab.trust.report import audit
        from tunelab.trust.runners import run_audit

        run_audit(paths.root.parent, spec.name, sample=spec.audit.sample, every=spec.audit.all, echo=echo)
        audited = audit(paths, top_k=spec.audit.top)
        for sentence in audited[0].sentences if audited is not None else []:
            echo(sentence)


def write_to_other_tools(spec: Spec, paths: StudyPaths, echo: Callable[[str], None]) -> None:
    """What the experiment's `logging:` asks for, written from the store once the study ended."""
    from tunelab.other_tools import write_mlflow, write_tensorboard

    if spec.logging.tensorboard:
        echo(f"tensorboard: {write_tensorboard(paths)} (tensorboard --logdir it)")
    if spec.logging.mlflow is not None:
        run_id = write_mlflow(paths, spec.logging.mlflow.tracking_uri, spec.logging.mlflow.experiment)
        echo(f"mlflow: parent run {run_id} in {spec.logging.mlflow.tracking_uri}")
