"""Customer registration: validated, refused by field, and never half-written."""

import pytest

from ipam.errors import ValidationError
from tests import factories as f


@pytest.mark.parametrize(
    "data,field",
    [
        ({"status": "exited"}, "status"),
        ({"colour": "red"}, "colour"),
        ({"kind": "isp"}, "isp_licence_number"),
        ({"contacts": [{"name": "x", "phone": "1"}]}, "contacts[0].phone"),
    ],
)
def test_customer_bad_input(session, unchanged, data, field):
    with unchanged(), pytest.raises(ValidationError) as err:
        f.customer(session, **data)
    assert err.value.field == field
