from shared.auth import key_matches


def test_key_matches_only_equal_non_empty_keys() -> None:
    assert key_matches("s3cret-key", "s3cret-key")
    assert not key_matches("s3cret-kez", "s3cret-key")
    assert not key_matches("s3cret-key-longer", "s3cret-key")
    assert not key_matches(None, "s3cret-key")
    assert not key_matches("", "")
    assert not key_matches("anything", None)
    assert key_matches("ключ\udcff", "ключ\udcff")  # odd characters from a header never crash
