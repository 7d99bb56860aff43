"""The static prefix of the extraction and decision prompts is the same bytes for every user, day
and turn - after the chat template too, which is what vLLM's prefix cache compares (in token blocks)."""

import datetime as dt

import pytest

from runtime import prompts

CASES = [
    ("user: I'm Ana and I live in Rome", dt.date(2026, 1, 1), [], ["Lives in Rome"]),
    ("user: I adopted a cat\nassistant: Lovely!\nuser: her name is Mia", dt.date(2026, 11, 25),
     [{"id": "0", "text": "Has a dog"}], ["Has a cat named Mia"]),
    ("user: ünïcödé ✓ – I moved to Zürich", dt.date(2030, 6, 30),
     [{"id": "0", "text": "Lives in Rome"}, {"id": "1", "text": "Likes tea"}], ["Lives in Zürich", "x" * 80]),
]


def common_prefix(texts: list[str]) -> str:
    first = texts[0]
    n = min(len(t) for t in texts)
    i = 0
    while i < n and all(t[i] == first[i] for t in texts):
        i += 1
    return first[:i]


def test_static_messages_are_byte_identical_across_users_days_and_turns():
    extraction = [prompts.render_extraction(conv) for conv, _, _, _ in CASES]
    decision = [prompts.render_decision(existing, facts) for _, _, existing, facts in CASES]
    for rendered in (extraction, decision):
        static = [repr(messages[:-1]).encode() for messages in rendered]
        assert len(set(static)) == 1


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from runtime.llms.packaged import ensure_packaged

    return AutoTokenizer.from_pretrained(str(ensure_packaged("smollm2-135m-instruct")))


@pytest.mark.parametrize("render", ["extraction", "decision"])
def test_the_templated_prompt_shares_its_static_prefix(tokenizer, render):
    if render == "extraction":
        rendered = [prompts.render_extraction(conv) for conv, _, _, _ in CASES]
    else:
        rendered = [prompts.render_decision(existing, facts) for _, _, existing, facts in CASES]
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in rendered]
    static = tokenizer.apply_chat_template(rendered[0][:-1], tokenize=False)
    prefix = common_prefix(texts)
    # everything up to the varying user turn is shared: the instructions and every example
    assert prefix.startswith(static)
    assert prefix[len(static):].startswith("<|im_start|>user\n")  # then the turn's own content
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    shared = 0
    while all(len(x) > shared and x[shared] == ids[0][shared] for x in ids):
        shared += 1
    # vLLM caches whole blocks of 16 tokens: the shared prefix spans many
    assert shared >= len(tokenizer(static, add_special_tokens=False)["input_ids"]) - 1
    assert shared // 16 >= 10
