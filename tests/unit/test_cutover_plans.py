"""Cutover plans survive the run state: written as JSON and read back identical (a rollback after
a crash works from them)."""

from failover.cutover import CutoverPlan, PreparePlan, plan_from_json, prepare_from_json
from failover.dns import canonical_value, record_set


def test_plans_round_trip_through_json() -> None:
    www = record_set("WWW.Social.Example.", "A", 60, ["192.0.2.2", "192.0.2.1"])
    prepare = PreparePlan("social.example", "aws", "onprem", 60, lower=[www], previous_source=[www], longest_ttl=300)
    assert prepare_from_json(prepare.to_json()) == prepare
    cutover = CutoverPlan(
        "social.example", "aws", "onprem", 60, {"192.0.2.1": ["127.0.0.2"]}, repoint_target=[www], refused="x"
    )
    assert plan_from_json(cutover.to_json()) == cutover


def test_record_sets_are_canonical() -> None:
    www = record_set("WWW.Social.Example.", "a", 60, ["192.0.2.2", "192.0.2.1"])
    assert (www.name, www.type, www.values) == ("www.social.example", "A", ("192.0.2.1", "192.0.2.2"))
    assert canonical_value("MX", "10 Mail.Social.Example") == "10 mail.social.example."
    assert canonical_value("SRV", "0 5 443 api.social.example") == "0 5 443 api.social.example."
    assert canonical_value("TXT", '"v=spf1 -all"') == '"v=spf1 -all"'
