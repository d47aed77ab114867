"""The install's keys: created once, 0600, never regenerated over existing data."""

import stat

import pytest
from cryptography.fernet import Fernet

from homelab import keys


def test_it_creates_both_keys_on_a_first_run_with_private_permissions(tmp_path):
    secret, field_key = keys.load_or_create(tmp_path, database_exists=False)
    assert len(secret) >= 50
    Fernet(field_key.encode())  # a valid Fernet key, not hex
    for name in (keys.SECRET_KEY_FILE, keys.FIELD_KEY_FILE, keys.KEY_CHECK_FILE):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, name


def test_it_returns_the_same_keys_on_the_next_run(tmp_path):
    first = keys.load_or_create(tmp_path, database_exists=False)
    second = keys.load_or_create(tmp_path, database_exists=True)
    assert first == second


def test_it_refuses_to_make_new_keys_when_a_database_exists(tmp_path):
    with pytest.raises(keys.KeyError_, match="missing but a database already exists"):
        keys.load_or_create(tmp_path, database_exists=True)
    assert not (tmp_path / keys.FIELD_KEY_FILE).exists()


def test_it_refuses_a_missing_encryption_key(tmp_path):
    keys.load_or_create(tmp_path, database_exists=False)
    (tmp_path / keys.FIELD_KEY_FILE).unlink()
    with pytest.raises(keys.KeyError_, match="is missing"):
        keys.load_or_create(tmp_path, database_exists=True)
    assert not (tmp_path / keys.FIELD_KEY_FILE).exists()


def test_it_refuses_a_replaced_encryption_key(tmp_path):
    keys.load_or_create(tmp_path, database_exists=False)
    (tmp_path / keys.FIELD_KEY_FILE).write_bytes(Fernet.generate_key())
    with pytest.raises(keys.KeyError_, match="not the one this data directory was created with"):
        keys.load_or_create(tmp_path, database_exists=True)


def test_it_refuses_a_key_that_is_not_a_fernet_key(tmp_path):
    keys.load_or_create(tmp_path, database_exists=False)
    (tmp_path / keys.FIELD_KEY_FILE).write_text("00112233445566778899aabbccddeeff")
    with pytest.raises(keys.KeyError_, match="not a valid key"):
        keys.load_or_create(tmp_path, database_exists=True)
