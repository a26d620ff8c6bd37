"""``finesift doctor``: prove each backend right against transformers fp32 on a fixed probe set.

``run_doctor(settings, options)`` checks named backends; ``self_test(settings, embedder=...,
reranker=...)`` checks already loaded models (the server's ``--self-test``). Both return a
:class:`DoctorReport` whose ``ok`` is False when any row failed.
"""

from finesift.doctor.diagnose import CATALOGUE, Diagnosis, Thresholds
from finesift.doctor.report import DoctorReport, Row
from finesift.doctor.run import DoctorOptions, run_doctor, self_test

__all__ = [
    "CATALOGUE",
    "Diagnosis",
    "DoctorOptions",
    "DoctorReport",
    "Row",
    "Thresholds",
    "run_doctor",
    "self_test",
]
