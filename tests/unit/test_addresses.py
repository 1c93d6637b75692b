import netaddr
import pytest

from ipam.addresses import Block, exclude, parse_address, parse_block, range_to_blocks
from ipam.errors import ValidationError


def test_parse_prefix_and_single_address():
    b = parse_block("198.18.7.0/24")
    assert (b.family, b.prefixlen, str(b)) == (4, 24, "198.18.7.0/24")
    assert b.last - b.first == 255
    single = parse_block("2001:db8::1")
    assert single.is_single and single.prefixlen == 128


@pytest.mark.parametrize(
    "text",
    [
        "198.18.7",
        "198.18.7.256/24",
        "2001:db8::g",
        "",
        "   ",
        "198.18.0.0/33",
        "198.18.0.0/x",
        "01.2.3.4",
    ],
)
def test_malformed_input_names_the_field(text):
    with pytest.raises(ValidationError) as err:
        parse_block(text, "prefix")
    assert err.value.field == "prefix"


def test_host_bits_set_says_which_network_was_meant():
    with pytest.raises(ValidationError) as err:
        parse_block("198.18.7.5/24")
    assert "198.18.7.0/24" in err.value.message and "host bits" in err.value.message


def test_zone_index_refused():
    with pytest.raises(ValidationError, match="zone"):
        parse_address("fe80::1%eth0")


def test_ipv4_mapped_ipv6_is_normalised_to_ipv4():
    assert parse_block("::ffff:198.18.7.9") == parse_block("198.18.7.9")
    assert parse_block("::ffff:198.18.7.0/120") == parse_block("198.18.7.0/24")


def test_prefix_given_where_an_address_is_needed():
    with pytest.raises(ValidationError, match="single address"):
        parse_address("198.18.0.0/24")


def test_buddy_parent_and_covering():
    b = parse_block("198.18.0.4/30")
    assert str(b.buddy()) == "198.18.0.0/30"
    assert str(b.parent()) == "198.18.0.0/29"
    firsts = b.covering_firsts()
    assert len(firsts) == 31 and firsts[0] == (b.first, 30) and firsts[-1] == (0, 0)


def test_exclude_gives_maximal_blocks_covering_the_rest():
    outer, inner = parse_block("198.18.0.0/24"), parse_block("198.18.0.5")
    pieces = exclude(outer, inner)
    assert netaddr.IPSet([p.network for p in pieces]) == netaddr.IPSet(
        [outer.network]
    ) - netaddr.IPSet([inner.network])
    assert len(pieces) == 8


def test_range_to_blocks_exact():
    blocks = range_to_blocks(
        4, int(netaddr.IPAddress("198.18.0.3")), int(netaddr.IPAddress("198.18.0.10"))
    )
    assert [str(b) for b in blocks] == [
        "198.18.0.3",
        "198.18.0.4/30",
        "198.18.0.8/31",
        "198.18.0.10",
    ]
    assert Block(4, 0, 0).size == 2**32
