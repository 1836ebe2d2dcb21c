from tests.world import World


def test_referral_then_accept(world: World) -> None:
    referral = world.refer()
    assert referral["case_state"] == "referred"
    case = world.advance(referral["case_id"], "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    assert case["state"] == "need_determination"
