"""The bench's base-image variants section: its names and arithmetic (no Docker).

Timing never decides a test: these check which image a variant is looked for under, how
"smaller" is computed, and that the two images take turns starting first.
"""

from __future__ import annotations

import pytest

from bench.probes import BenchError
from bench.variants import VARIANTS, round_order, smaller_by, variant_image
from facts import ROOT


def test_a_variant_image_sits_beside_the_image_with_the_same_tag():
    assert variant_image("ai-trader:dev", "distroless") == "ai-trader-distroless:dev"


def test_a_variant_of_an_untagged_image_gets_no_tag():
    assert variant_image("ai-trader", "distroless") == "ai-trader-distroless"


def test_a_registry_port_is_not_taken_for_a_tag():
    assert variant_image("localhost:5000/ai-trader", "distroless") == (
        "localhost:5000/ai-trader-distroless"
    )


def test_smaller_is_the_share_of_the_reference_saved_in_percent():
    assert smaller_by(70e6, 200e6) == pytest.approx(65.0)


def test_a_larger_variant_is_smaller_by_a_negative_share():
    assert smaller_by(250e6, 200e6) == pytest.approx(-25.0)


def test_a_reference_of_no_size_is_an_error_not_a_number():
    with pytest.raises(BenchError, match="reference image size"):
        smaller_by(70e6, 0)


def test_the_two_images_take_turns_starting_first():
    orders = [round_order(run, ("today", "distroless")) for run in range(4)]
    assert orders == [
        ("today", "distroless"),
        ("distroless", "today"),
        ("today", "distroless"),
        ("distroless", "today"),
    ]


def test_every_variant_names_a_dockerfile_in_the_repository():
    for variant in VARIANTS:
        assert (ROOT / variant.dockerfile).is_file(), variant.dockerfile
