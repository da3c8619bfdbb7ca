"""Claims: checkable sentences about the topic, with attribution, normalised figures and hedges.

Public API (engineers code against these names): ``extract_pending_claims``, ``select_claims``,
``parse_figures``, ``find_attribution``, ``find_hedges``, and the records ``Claim``, ``Figure``,
``Attribution``.
"""

from pipeline.claims.attribution import ATTRIBUTION_KINDS, Attribution, find_attribution, find_hedges
from pipeline.claims.extract import Claim, ClaimCandidate, claim_id, extract_pending_claims, select_claims
from pipeline.claims.figures import Figure, figures_relation, parse_figures

__all__ = [
    "ATTRIBUTION_KINDS", "Attribution", "Claim", "ClaimCandidate", "Figure", "claim_id",
    "extract_pending_claims", "figures_relation", "find_attribution", "find_hedges", "parse_figures",
    "select_claims",
]
