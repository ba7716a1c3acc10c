import pytest

from tf_factorgan import layout
from tf_factorgan.factorisation import Variant
from tf_factorgan.layout import GENERATED, JOINT, Source


def _rows(table):
    return [(d.name, d.part, d.real, d.fake, d.sign) for d in table.discriminators]


def test_factorgan_has_the_papers_four_kinds_of_discriminator():
    table = layout.layout(Variant.FACTORGAN, 3)
    assert _rows(table) == [
        ("marginal_0", 0, Source("marginal_0"), Source(GENERATED), +1),
        ("marginal_1", 1, Source("marginal_1"), Source(GENERATED), +1),
        ("marginal_2", 2, Source("marginal_2"), Source(GENERATED), +1),
        ("p_dependency", None, Source(JOINT), Source(JOINT, shuffled=True), +1),
        ("q_dependency", None, Source(GENERATED), Source(GENERATED, shuffled=True), -1),
    ]
    assert table.streams == {"joint": None, "marginal_0": 0, "marginal_1": 1, "marginal_2": 2}
    assert table.marginal_parts() == (0, 1, 2) and table.condition_stream is None
    assert [d.sees_generated for d in table.discriminators] == [True, True, True, False, True]


def test_no_cp_drops_d_p_and_with_it_the_paired_stream():
    table = layout.layout(Variant.FACTORGAN_NO_CP, 2)
    assert table.names == ("marginal_0", "marginal_1", "q_dependency")
    assert table.streams == {"marginal_0": 0, "marginal_1": 1}
    assert table.find("p_dependency") is None


@pytest.mark.parametrize("conditional, condition_stream", [(False, None), (True, JOINT)])
def test_the_gan_reads_paired_samples_only(conditional, condition_stream):
    table = layout.layout(Variant.GAN, 2, conditional)
    assert _rows(table) == [("joint", None, Source(JOINT), Source(GENERATED), +1)]
    assert table.streams == {"joint": None} and table.condition_stream == condition_stream


def test_conditional_factorgan_takes_inputs_from_marginal_stream_0_without_judging_them():
    table = layout.layout(Variant.FACTORGAN, 3, conditional=True)
    assert table.names == ("marginal_1", "marginal_2", "p_dependency", "q_dependency")
    # The stream order fixes each stream's seed: joint, the inputs, then the marginals.
    assert list(table.streams.items()) == [
        ("joint", None), ("marginal_0", 0), ("marginal_1", 1), ("marginal_2", 2)]
    assert table.condition_stream == "marginal_0"
