"""The generic registry under lifeiqa's presets and the harness's models and datasets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lifeiqa.naming import Registry, unknown_message


class Unknown(LookupError):
    pass


class Taken(ValueError):
    def __init__(self, name: str, new: Entry, known: Entry) -> None:
        super().__init__(name)
        self.name, self.new, self.known = name, new, known


@dataclass(frozen=True)
class Entry:
    name: str
    owner: str = "a"


def unknown(kind: str, name: str, known: list[str]) -> Unknown:
    return Unknown(unknown_message(kind, name, known))


def folded(name: str) -> str:
    return name.lower().replace("-", "")


def registry(**options) -> Registry[Entry]:
    return Registry("thing", unknown, Taken, **options)


def test_entries_are_found_by_name_and_alias_and_listed_in_registration_order():
    things = registry()
    first = things.register("zeta", Entry("zeta"), aliases=("z",))
    things.register("alpha", Entry("alpha"))
    assert first == Entry("zeta")
    assert things.get("zeta") is first and things.get("z") is first
    assert things.names() == ["zeta", "alpha"] == list(things)  # aliases are not names
    assert things.names("*a") == ["zeta", "alpha"] and things.names("a*") == ["alpha"]
    assert "z" in things and "omega" not in things and 3 not in things


@pytest.mark.parametrize(("name", "aliases", "clash", "holder"), [
    ("alpha", (), "alpha", "alpha"),  # the same name
    ("beta", ("a",), "a", "alpha"),  # an alias taking another entry's alias
    ("a", (), "a", "alpha"),  # a name taking an alias
    ("gamma", ("alpha",), "alpha", "alpha"),  # an alias taking a name
])
def test_a_name_or_alias_that_is_taken_is_refused(name, aliases, clash, holder):
    things = registry()
    things.register("alpha", Entry("alpha"), aliases=("a",))
    with pytest.raises(Taken) as info:
        things.register(name, Entry(name), aliases)
    assert (info.value.name, info.value.new, info.value.known) == (clash, Entry(name), Entry(holder))
    assert things.names() == ["alpha"] and things.get("a") == Entry("alpha")  # nothing changed


def test_names_are_compared_as_the_key_compares_them():
    things = registry(key=folded)
    things.register("kadid10k", Entry("kadid10k"), aliases=("kadid", "KADID-10k"))  # own repeat
    assert things.get("KADID-10K") == Entry("kadid10k") and "Ka-did" in things
    for name, aliases in (("Kadid-10k", ()), ("other", ("KADID",))):
        with pytest.raises(Taken) as info:
            things.register(name, Entry(name), aliases)
        assert info.value.known == Entry("kadid10k")
    assert things.names() == ["kadid10k"]


def test_replaces_lets_an_owner_register_its_own_name_again():
    things = registry(replaces=lambda new, known: new.owner == known.owner)
    things.register("alpha", Entry("alpha"), aliases=("a",))
    things.register("beta", Entry("beta"))
    again = things.register("alpha", Entry("alpha", owner="a"), aliases=("aa",))
    assert things.get("alpha") is again and things.names() == ["alpha", "beta"]  # same place
    assert "aa" in things and "a" not in things  # the aliases it had go with it
    with pytest.raises(Taken):
        things.register("alpha", Entry("alpha", owner="b"))  # another owner may not
    with pytest.raises(Taken):
        things.register("alpha", Entry("alpha"), aliases=("beta",))  # nor take another's name
    assert things.get("alpha") is again and things.get("beta") == Entry("beta")


def test_an_unknown_name_raises_the_callers_error_naming_the_close_ones():
    things = registry()
    for name in ("lifeiqa_swin_b", "lifeiqa_swin_t", "lifeiqa_tiny"):
        things.register(name, Entry(name))
    with pytest.raises(Unknown) as info:
        things.get("lifeiqa_swinb")
    message = str(info.value)
    assert message.startswith("unknown thing 'lifeiqa_swinb'; did you mean lifeiqa_swin_b")
    assert message.endswith("Known: lifeiqa_swin_b, lifeiqa_swin_t, lifeiqa_tiny")
    with pytest.raises(Unknown, match=r"^unknown thing 'zzz'\. Known: "):
        things.get("zzz")  # nothing close


def test_unknown_message_names_at_most_three_close_names_and_all_known_sorted():
    known = ["model_e", "model_a", "model_c", "model_b", "model_d", "other"]
    message = unknown_message("model", "model_", known)
    close = message.split("did you mean ")[1].split("?")[0].split(", ")
    assert len(close) == 3 and set(close) <= set(known) - {"other"}
    assert message.endswith("Known: model_a, model_b, model_c, model_d, model_e, other")
