"""Fake Klaviyo, Omnisend and Postscript servers for the provider clients' tests.

with FakeOmnisend(api_keys={"key-1"}) as omnisend:
    omnisend.add_contact("ann@example.com")
    omnisend.fail_next(1, status=429, retry_after=3)
    ...  # point a client at omnisend.base_url
    assert omnisend.requests[0].status == 429
    assert omnisend.contact("ann@example.com")["customProperties"]
"""

from __future__ import annotations

from tests.support.fakes.klaviyo import FakeKlaviyo
from tests.support.fakes.omnisend import FakeOmnisend
from tests.support.fakes.postscript import FakePostscript
from tests.support.fakes.server import FakeProviderServer, RecordedRequest

__all__ = ["FakeKlaviyo", "FakeOmnisend", "FakePostscript", "FakeProviderServer", "RecordedRequest"]
