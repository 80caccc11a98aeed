from shared.web.auth import key_matches, redact


def test_key_matches_only_equal_non_empty_keys() -> None:
    assert key_matches("s3cret-key", "s3cret-key")
    assert not key_matches("s3cret-kez", "s3cret-key")
    assert not key_matches("s3cret-key-longer", "s3cret-key")
    assert not key_matches(None, "s3cret-key")
    assert not key_matches("", "")
    assert not key_matches("anything", None)
    assert key_matches("ключ\udcff", "ключ\udcff")  # odd characters from a header never crash


def test_redact_masks_a_secret_whole_or_cut_short() -> None:
    key = "Abcdefghijklmnopqrstuvwxyz0123456789_-XYZab"  # as long as secrets.token_urlsafe(32)
    assert redact(f"is not a number: '{key[:40]}…'", key) == "is not a number: '***…'"
    assert redact(f"a {key} b {key[7:30]} c", None, "", key) == "a *** b *** c"
    assert redact("a short piece " + key[:11], key) == "a short piece " + key[:11]  # < REDACT_RUN: too short to matter
    assert redact("nothing secret", key) == "nothing secret"
