"""Keys for secrets at rest and for viewer tokens: rotation as docs/CONFIG.md says."""

from __future__ import annotations

import pytest

from rop.store.vault import Vault, VaultError
from rop.web.appmode.viewer_token import ViewerClaim, ViewerTokenError, ViewerTokens


def test_a_rotated_vault_reads_old_secrets_and_writes_new_ones():
    old = Vault(["old-key"])
    sealed = old.seal("refresh-token-1")
    assert sealed is not None and "refresh-token-1" not in sealed
    rotated = Vault(["new-key", "old-key"])
    assert rotated.unseal(sealed) == "refresh-token-1"
    again = rotated.rotate(sealed)
    assert Vault(["new-key"]).unseal(again) == "refresh-token-1"
    with pytest.raises(VaultError, match="ROP_APP_SECRET_KEY"):
        Vault(["new-key"]).unseal(sealed)


def test_viewer_tokens_survive_a_key_rotation_and_refuse_tampering():
    claim = ViewerClaim("member", 7, False)
    token = ViewerTokens(["old"], 60).issue(claim)
    assert ViewerTokens(["new", "old"], 60).read(token) == claim
    with pytest.raises(ViewerTokenError) as refused:
        ViewerTokens(["new"], 60).read(token)
    assert refused.value.reason == "invalid"
    head, _, tail = token.rpartition(".")
    forged = ViewerTokens(["old"], 60)
    with pytest.raises(ViewerTokenError):
        forged.read(head.replace(head[:4], "WyJ4") + "." + tail)
