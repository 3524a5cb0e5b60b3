"""`heartml champion --promote-challenger`: the version holding the challenger alias (the one
registry-mode serving scores in shadow) replaces the champion only through the promotion gate
(heartml.tracking.promotion.decide), like a freshly tracked candidate."""

from __future__ import annotations

from heartml.config import PromotionConfig
from heartml.errors import TrackingError
from heartml.tracking.promotion import PromotionDecision, decide
from heartml.tracking.registry import Registry
from heartml.tracking.versions import RegisteredVersion


def promote_challenger(registry: Registry, policy: PromotionConfig) -> PromotionDecision:
    """Judge the challenger against the champion; if the gate lets it through, it takes the
    champion alias (the old champion keeps `champion_previous` for rollback) and gives up the
    challenger alias. Every decision is recorded on the challenger's run."""
    alias = registry.settings.challenger_alias
    if not alias:
        raise TrackingError("no challenger alias is configured (HEARTML_CHALLENGER_ALIAS is empty)")
    challenger = registry.find_alias(alias)
    if challenger is None:
        raise TrackingError(
            f"no version holds the alias {alias!r}",
            hint=f"set it in the MLflow UI or with MlflowClient.set_registered_model_alias(name, "
            f"{alias!r}, version)",
        )
    current = registry.find_champion()
    if current is not None and (current.model_name, current.version) == (
        challenger.model_name,
        challenger.version,
    ):
        raise TrackingError(
            f"{challenger.model_name} version {challenger.version} is already the champion"
        )
    candidate = RegisteredVersion(
        challenger.algorithm,
        challenger.model_name,
        challenger.version,
        challenger.run_id,
        challenger.roc_auc,
    )
    decision = decide(candidate, challenger.tags, current, policy)
    if decision.promote:
        registry.apply_promotion(decision)
        registry.remove_alias(challenger.model_name, alias)
    registry.record_decision(challenger.run_id, decision)
    return decision
