"""Forgotten people's names as salted SHA-256 hashes (``faceunlearn.data.salted_names``)."""

from __future__ import annotations

import hashlib

import pytest

from faceunlearn.data import salted_names
from faceunlearn.data.splits import identity_ids_from_names


def test_a_token_is_the_sha256_of_salt_bytes_and_name():
    salt = "00ff10" * 2
    expected = hashlib.sha256(bytes.fromhex(salt) + "Zoë Ångström".encode("utf-8")).hexdigest()
    assert salted_names.token("Zoë Ångström", salt) == f"salted-sha256:{salt}:{expected}"


def test_one_salt_per_call_so_two_runs_give_unrelated_tokens():
    first, second = salted_names.salted(["alice", 3, "bob"]), salted_names.salted(["alice", 3, "bob"])
    assert first[1] == 3 and all(salted_names.is_token(first[i]) for i in (0, 2))
    assert first[0].split(":")[1] == first[2].split(":")[1]  # one salt within a run
    assert first[0] != second[0]  # another run, another salt
    assert "alice" not in first[0] and salted_names.salted(first) == first  # tokens stay tokens


def test_names_of_maps_only_the_names_you_hold():
    tokens = salted_names.salted(["alice", "bob"])
    assert salted_names.names_of(tokens, ["bob", "carol"]) == {tokens[0]: None, tokens[1]: "bob"}
    with pytest.raises(ValueError, match="not a salted name hash"):
        salted_names.match("salted-sha256:zz:00", ["alice"])


def test_a_pack_resolves_tokens_even_after_it_was_rebuilt_in_another_order():
    tokens = salted_names.salted(["alice", "carol"])
    assert identity_ids_from_names([tokens[0], 5, tokens[1]], ["alice", "bob", "carol"]) == [0, 5, 2]
    assert identity_ids_from_names(tokens, {"7": "carol", "9": "alice"}) == [9, 7]  # ids moved, same people
    with pytest.raises(ValueError, match="1 salted name hash of the forget identities matches no name"):
        identity_ids_from_names(tokens, ["alice", "bob"])
    with pytest.raises(ValueError, match=r"by name or salted hash \(salted-sha256:.*…\), but the pack's meta.json has no identity_names"):
        identity_ids_from_names(tokens, None)
