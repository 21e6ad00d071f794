"""Verification ROC curves of audited models: forget identities and held-out identities side by side (the audit's
``roc.png`` and the report's ``audit_roc.png``)."""

TESTS = ("verify_forget", "verify_retain")
TITLES = {"verify_forget": "forget identities", "verify_retain": "held-out identities"}


def roc_figure(curves: dict[str, dict], ylabel: str = "TAR", dashed=(), size=(10, 4)):
    """``curves[label][test] = (fars, tars)`` for the tests of ``TESTS`` a label has; ``dashed``: labels drawn dashed
    (the references). Returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=size, sharey=True)
    for axis, test in zip(axes, TESTS):
        for label, by_test in curves.items():
            if test in by_test:
                fars, tars = by_test[test]
                axis.plot(fars, tars, label=label, linestyle="--" if label in dashed else "-")
        axis.set_xscale("log")
        axis.set_xlabel("FAR (held-out impostor pairs)")
        axis.set_title(TITLES[test])
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    (axes[1] if len(curves) > 4 else axes[0]).legend(fontsize=7 if len(curves) > 4 else None, loc="lower right" if len(curves) > 4 else "best")
    figure.tight_layout()
    return figure
