"""Exact analysis over an input box: the true range of every unit by mixed-integer
programming (HiGHS), each end with a witness input; exact local robustness in an
L-infinity ball; and an exactly simplified flowgraph with a re-checkable certificate.
Works on the generic Flowgraph layers (an unrolled convolution is the same code)."""

from ._analyse import (
    BoxAnalysis,
    analyse_box,
    analyse_run,
    analysis_dict,
    analysis_text,
    analysis_timing,
    exact_bounds,
    robust_dict,
    robust_run,
    robust_text,
)
from ._box import Box, ball, make_box, parse_box
from ._certificate import CertificateCheck, CertificateError, check_certificate
from ._dag import Dag, compose, dag_from_dict, dag_from_flowgraph, dag_sizes, dag_to_dict, evaluate_dag, prune
from ._ranges import ExactRanges, exact_ranges, float32_bounds
from ._robust import AdversarialAccuracy, Robustness, adversarial_accuracy, certify, robust_at
from ._simplify import Simplified, simplify

__all__ = [
    "AdversarialAccuracy",
    "Box",
    "BoxAnalysis",
    "CertificateCheck",
    "CertificateError",
    "Dag",
    "ExactRanges",
    "Robustness",
    "Simplified",
    "adversarial_accuracy",
    "analyse_box",
    "analyse_run",
    "analysis_dict",
    "analysis_text",
    "analysis_timing",
    "ball",
    "certify",
    "check_certificate",
    "compose",
    "dag_from_dict",
    "dag_from_flowgraph",
    "dag_sizes",
    "dag_to_dict",
    "evaluate_dag",
    "exact_bounds",
    "exact_ranges",
    "float32_bounds",
    "make_box",
    "parse_box",
    "prune",
    "robust_at",
    "robust_dict",
    "robust_run",
    "robust_text",
    "simplify",
]
