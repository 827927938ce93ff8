"""The synthesis net's alphabet: ids, one-hot text, unknown characters, substitutions, round trips."""

from __future__ import annotations

import json
import tarfile

import pytest
import torch

from conftest import require_data
from graves.data.alphabet import IAM_CHARACTERS, Alphabet, UnknownCharacterError, substitute_text


def test_full_alphabet_ids_and_size():
    a = Alphabet.build("full")
    assert len(IAM_CHARACTERS) == 84 and len(set(IAM_CHARACTERS)) == 84
    assert len(a) == 84 + 2 == a.vocab_size  # padding (0) + unknown (1) + characters
    ids = a.encode("Hello, world!")
    assert min(ids) >= 2 and len(set(ids)) == len(set("Hello, world!"))
    assert a.decode(ids) == "Hello, world!"


def test_full_alphabet_from_training_texts():
    a = Alphabet.build("full", ["ab c", "cab!"])
    assert a.characters == (" ", "!", "a", "b", "c") and len(a) == 7
    assert a.encode("cab") == [6, 4, 5]
    with pytest.raises(UnknownCharacterError, match="'z'"):
        a.encode("z")
    assert a.encode("z*", substitute=True) == [1, 1]  # unseen characters: the unknown class
    assert Alphabet.build("paper57", ["xyz"]) == Alphabet.build("paper57")  # a fixed table


def test_paper57_has_57_classes_and_merges_non_letters():
    a = Alphabet.build("paper57")
    assert len(a) - 1 == 57  # every id but padding is a class
    # letters and the kept marks get their own class; digits and other punctuation share one
    assert len({a.encode(c)[0] for c in "abcXYZ .,\""}) == 10
    merged = {a.encode(c)[0] for c in "0123456789'!?-();:"}
    assert merged == {1}
    assert a.decode(a.encode("can't 42")) == "can\ufffdt \ufffd\ufffd"


def test_unknown_characters_are_named():
    a = Alphabet.build("full")
    with pytest.raises(UnknownCharacterError) as info:
        a.encode("naïve café €5")
    assert info.value.characters == sorted({"ï", "é", "€"})
    msg = str(info.value)
    assert "'ï'" in msg and "'é'" in msg and "'€'" in msg
    assert isinstance(info.value, ValueError)
    # paper57 merges IAM's non-letters, but a character outside IAM is still an error
    with pytest.raises(UnknownCharacterError):
        Alphabet.build("paper57").encode("€")


def test_substitution_table():
    a = Alphabet.build("full")
    assert substitute_text("\u201cQuote\u201d \u2018it\u2019s\u2019 \u2013 \u2014 caf\u00e9 \u00c7a na\u00efve\u2026") == (
        "\"Quote\" 'it's' - - cafe Ca naive..."
    )
    ids = a.encode("\u00a9 \u20ac \u00e9", substitute=True)  # © and € have no substitute: unknown class
    assert ids[0] == 1 and ids[2] == 1 and a.decode(ids[4:]) == "e"
    assert a.encode("Stra\u00dfe", substitute=True) == a.encode("Strasse")


def test_empty_text_is_an_error():
    a = Alphabet.build("full")
    with pytest.raises(ValueError, match="empty"):
        a.encode("")
    with pytest.raises(ValueError, match="empty"):
        a.one_hot(["ok", ""])


def test_one_hot_pads_with_zero_rows():
    a = Alphabet.build("full")
    c, lengths = a.one_hot(["abc", "a", "hello"])
    assert c.shape == (3, 5, len(a)) and c.dtype == torch.float32
    assert lengths.tolist() == [3, 1, 5]
    assert torch.equal(c.sum(-1), (torch.arange(5) < lengths[:, None]).float())  # one 1 per real row, padding zero
    assert c[..., 0].sum() == 0  # the padding column is never hot
    assert torch.equal(c[0, :3].argmax(-1), torch.tensor(a.encode("abc")))


def test_dict_round_trip_through_json():
    for kind in ("full", "paper57"):
        a = Alphabet.build(kind)
        b = Alphabet.from_dict(json.loads(json.dumps(a.to_dict())))
        assert a == b and len(a) == len(b)
        assert b.encode("Hi 9.") == a.encode("Hi 9.")


def test_full_alphabet_covers_every_iam_transcription():
    """IAM_CHARACTERS is exactly the set of characters of the real transcriptions (CSR parts)."""
    archive = require_data("iam-ondb", "ascii-all.tar.gz")
    chars: set[str] = set()
    with tarfile.open(archive) as tar:
        for m in tar:
            if m.isfile() and m.name.endswith(".txt"):
                text = tar.extractfile(m).read().decode("latin-1")
                if "CSR:" in text:
                    for line in text.split("CSR:", 1)[1].splitlines():
                        if line.strip():
                            chars.update(line.strip("\r"))
    assert chars == set(IAM_CHARACTERS)


def test_value_objects_hash_as_they_compare():
    """Alphabet, Normaliser and Vocab compare by value; equal ones hash alike (usable as keys and in sets)."""
    import numpy as np

    from graves.data.strokes import Normaliser
    from graves.data.text import Vocab

    pairs = [
        (Alphabet.build("full"), Alphabet.build("full"), Alphabet.build("paper57")),
        (Normaliser(np.array([1.0, 2.0]), np.array([3.0, 4.0])), Normaliser(np.array([1.0, 2.0]), np.array([3.0, 4.0])),
         Normaliser(np.array([1.0, 2.0]), np.array([3.0, 5.0]))),
        (Vocab(list("ab"), "char"), Vocab(list("ab"), "char"), Vocab(list("ab"), "char", unk="a")),
    ]
    for a, same, other in pairs:
        assert a == same and hash(a) == hash(same) and len({a, same, other}) == 2
