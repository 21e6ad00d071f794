"""The paper's result tables as configuration: which (benchmark, metric) columns, for which runs.

A ``Column`` is one (benchmark, metric) of the tidy results. A column with a ``group`` is one of
several alternatives (e.g. the retention benchmark: ``retain`` on the synthetic demo, ``cfp`` and
``vggface2`` on real data): it is shown when some run of the table has its benchmark (one of the
table's metrics of it), and when no benchmark of its group is in any run, the whole group is
shown as missing; columns left out are named in a note under the table. A column without a group is always
shown. Either way a method without the column's value gets a "missing" cell, never a dropped column.

A ``Table`` selects runs by scenario (done.json's ``scenario``): ``scenarios`` keeps only those
(None: all), ``exclude_scenarios`` leaves those out.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the report's own rows: a benchmark's chance level, and the Retrain reference
CHANCE, RETRAIN = "Chance (random ranking)", "Retrain"
#: the paper's row order; methods not listed come after, in name order
METHOD_ORDER = (CHANCE, "Original", RETRAIN, "RetainControl", "RandomLabeling", "GradientAscent", "LipschitzUnlearning", "ContrastiveUnlearning",
                "BoundaryShrink", "Dispersion", "HardDispersion")

#: scenarios with tables of their own (Table 4), left out of the main protocol's Tables 1–3
VGGFACE2_FORGET = "vggface2"


@dataclass(frozen=True)
class Column:
    benchmark: str
    metric: str
    title: str
    group: str | None = None


@dataclass(frozen=True)
class Table:
    key: str  # short name, e.g. "table1" (report.csv's table column)
    title: str
    columns: tuple[Column, ...]
    scenarios: tuple[str, ...] | None = None
    exclude_scenarios: tuple[str, ...] = ()
    note: str = ""

    def selects(self, scenario: str) -> bool:
        return (self.scenarios is None or scenario in self.scenarios) and scenario not in self.exclude_scenarios

    def describe_scenarios(self) -> str:
        if self.scenarios is not None:
            return "scenario " + " or ".join(self.scenarios)
        return "any scenario" + (" except " + ", ".join(self.exclude_scenarios) if self.exclude_scenarios else "")


def _retrieval(benchmark: str, title: str, group: str | None = None) -> tuple[Column, Column]:
    return Column(benchmark, "mAP", f"{title} mAP", group), Column(benchmark, "R@1", f"{title} R@1", group)


TABLE_1 = Table(
    "table1",
    "Table 1: base retrieval (mAP, R@1 in %)",
    (
        *_retrieval("forget", "forget"),
        *_retrieval("retain", "retain (held-out)", "retention"),
        *_retrieval("cfp", "CFP-FP", "retention"),
        *_retrieval("vggface2", "VGGFace2", "retention"),
        *_retrieval("celebrities", "celebrities (held-out)", "retention"),
        *_retrieval("orl", "ORL", "retention"),
        *_retrieval("kept", "kept people", "retention"),
        *_retrieval("heldout", "held-out people", "retention"),
    ),
    exclude_scenarios=(VGGFACE2_FORGET,),
    note="forget: D_f^test queries vs the D_f gallery; retention: every retention benchmark the runs have "
         "(synthetic demo: held-out profile→frontal; real data: CFP-FP, VGGFace2 test; real faces under SFace: "
         "the reported held-out celebrities and ORL subjects; your own data: the kept people's query/gallery halves and a held-out pack).",
)
TABLE_2 = Table(
    "table2",
    "Table 2: cluster compactness (CS, cosine) and centroid accuracy (acc, %)",
    (
        Column("forget", "CS", "forget CS"),
        Column("retain", "CS", "retain CS"),
        Column("forget", "acc", "forget acc"),
        Column("retain", "acc", "retain acc"),
    ),
    exclude_scenarios=(VGGFACE2_FORGET,),
    note="CS and acc on D_f (forget) and D_r (retain); acc = nearest CosFace class weight.",
)
TABLE_3 = Table(
    "table3",
    "Table 3: extended galleries, + distractors (mAP, R@1 in %)",
    (
        *_retrieval("forget_extended", "forget ext."),
        *_retrieval("retain_extended", "retain ext.", "retention"),
        *_retrieval("cfp_extended", "CFP-FP ext.", "retention"),
    ),
    exclude_scenarios=(VGGFACE2_FORGET,),
    note="galleries plus the distractor pool (real data: 75,000 IJB-B faces).",
)
TABLE_4 = Table(
    "table4",
    "Table 4: VGGFace2 forget scenario (mAP, R@1 in %)",
    (
        *_retrieval("forget", "forget"),
        *_retrieval("forget_extended", "forget + distractors"),
        *_retrieval("cfp_extended", "CFP-FP ext."),
    ),
    scenarios=(VGGFACE2_FORGET,),
    note="10 VGGFace2 identities forgotten; forget: D_f^test queries vs D_f^train "
         "(+ distractors: the paper's gallery); retention: CFP-FP extended.",
)

TABLE_5 = Table(
    "table5",
    "Retention that can fail: every held-out person pooled (mAP, R@1, TAR in %)",
    (
        *_retrieval("heldout_pooled", "held-out pooled"),
        Column("heldout_pooled", "TAR@FAR=0.001", "held-out TAR@FAR=1e-3"),
        Column("heldout_pooled", "TAR@FAR=0.0001", "held-out TAR@FAR=1e-4"),
        *_retrieval("heldout_pooled_extended", "held-out pooled + distractors"),
    ),
    exclude_scenarios=(VGGFACE2_FORGET,),
    note="every reported held-out person of every held-out source in one gallery (per-identity query and gallery "
         "halves; + distractors where the protocol has them), and 1:1 verification over all their pairs pooled. "
         "Where the per-source retention mAPs of Table 1 sit at the ceiling, these can still move.",
)

TABLES = (TABLE_1, TABLE_2, TABLE_3, TABLE_4, TABLE_5)
TABLES_BY_NUMBER = {str(index): table for index, table in enumerate(TABLES, start=1)}


def method_sort_key(method: str) -> tuple:
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)
