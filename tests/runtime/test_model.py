import pytest

from runtime.errors import InvalidRequest
from runtime.messages import normalize_messages, transcript
from runtime.model import JournalEntry, Scope, event_from_entry, replay


def test_scope_needs_an_id_and_picks_the_owner():
    with pytest.raises(InvalidRequest):
        Scope()
    assert Scope(user_id="u", agent_id="a").owner == "user:u"
    assert Scope(agent_id="a", run_id="r").owner == "agent:a"
    assert Scope(run_id="r").owner == "run:r"
    assert [s.fields() for s in Scope(user_id="u", agent_id="a", run_id="r").broader()] == [
        {"user_id": "u", "agent_id": "a", "run_id": "r"}, {"user_id": "u", "agent_id": "a"}, {"user_id": "u"},
    ]


@pytest.mark.parametrize("messages", [None, [], 5, [{"role": "user"}], [{"role": "robot", "content": "x"}],
                                      [{"role": "system", "content": "only instructions"}], ["plain string in list"]])
def test_malformed_messages_are_rejected(messages):
    with pytest.raises(InvalidRequest):
        normalize_messages(messages)


def test_messages_accept_mem0_shapes():
    assert normalize_messages("hi")[0].content == "hi"
    assert normalize_messages({"role": "assistant", "content": "ok"})[0].role == "assistant"
    messages = normalize_messages([{"role": "system", "content": "s"}, {"role": "user", "content": "I like tea"}])
    assert transcript(messages) == "user: I like tea"


def entry(seq: int, event: str, memory_id: str, text: str | None) -> JournalEntry:
    return JournalEntry(seq=seq, id=f"e{seq}", memory_id=memory_id, event=event, old_memory=None, new_memory=text,
                        scope=Scope(user_id="u"), tenant="t", created_at="c")


def test_replay_folds_the_journal_into_live_memories():
    live = replay([entry(1, "ADD", "a", "x"), entry(2, "ADD", "b", "y"), entry(3, "UPDATE", "a", "x2"),
                   entry(4, "DELETE", "b", None)])
    assert {k: v.text for k, v in live.items()} == {"a": "x2"}


def test_events_are_tagged_by_kind():
    assert event_from_entry(entry(1, "ADD", "a", "x")).memory == "x"
    assert type(event_from_entry(entry(4, "DELETE", "b", None))).__name__ == "MemoryDeleted"
