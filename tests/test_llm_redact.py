"""Redaction (phones in Brazilian formats, e-mails, CPF/CNPJ, cards, JIDs…), transcript truncation,
the rule analyser's lexicon and the answer schemas."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm.redact import redact
from llm.rules import RuleAnalyzer, sentiment
from llm.schemas import InvalidAnswerError, analysis_schema, parse_analysis, parse_routing
from llm.transcript import TranscriptMessage, estimate_tokens, render
from tests.fakes.llm import CPF, EMAIL, PHONE_LIKE


def _clean(text: str) -> bool:
    return not (PHONE_LIKE.search(text) or EMAIL.search(text) or CPF.search(text))


@pytest.mark.parametrize(
    ("raw", "placeholder"),
    [
        ("+55 (11) 98765-4321", "[PHONE]"),
        ("(11) 98765-4321", "[PHONE]"),
        ("11 98765-4321", "[PHONE]"),
        ("(11) 3456-7890", "[PHONE]"),
        ("011 98765 4321", "[PHONE]"),
        ("+5511987654321", "[PHONE]"),
        ("98765-4321", "[PHONE]"),
        ("5511987654321@s.whatsapp.net", "[PHONE]"),
        ("123456789012345@lid", "[PHONE]"),
        ("joao.silva+loja@gmail.com", "[EMAIL]"),
        ("123.456.789-09", "[CPF]"),
        ("12345678909", "[CPF]"),
        ("12.345.678/0001-95", "[CNPJ]"),
        ("4111 1111 1111 1111", "[CARD]"),
        ("5500-0000-0000-0004", "[CARD]"),
        ("01310-100", "[CEP]"),
        ("123e4567-e89b-12d3-a456-426614174000", "[ID]"),
        ("https://loja.com/pedido?token=abc", "[URL]"),
    ],
)
def test_known_formats_are_replaced(raw: str, placeholder: str) -> None:
    out = redact(f"dados: {raw} ok")
    assert placeholder in out and raw not in out and out.endswith(" ok")


def test_ordinary_numbers_and_words_survive() -> None:
    text = "Pedido 12345 com 2 itens, R$ 150,00, às 14:30 do dia 12/03/2026"
    assert redact(text) == text


_DDD = st.integers(11, 99).map(str)
_MOBILE = st.integers(10_000_000, 99_999_999).map(lambda n: "9" + str(n))
_LANDLINE = st.integers(20_000_000, 59_999_999).map(str)


@st.composite
def brazilian_phone(draw: st.DrawFn) -> str:
    ddd, number = draw(_DDD), draw(st.one_of(_MOBILE, _LANDLINE))
    local = f"{number[:-4]}{draw(st.sampled_from(['', '-', ' ', '.']))}{number[-4:]}"
    area = draw(st.sampled_from([f"({ddd}) ", f"{ddd} ", f"0{ddd} ", f"({ddd})", f"{ddd}"]))
    country = draw(st.sampled_from(["", "+55 ", "+55", "55 ", "55"]))
    return country + area + local


@st.composite
def cpf(draw: st.DrawFn) -> str:
    d = "".join(str(draw(st.integers(0, 9))) for _ in range(11))
    return draw(st.sampled_from([d, f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"]))


_EMAILS = st.from_regex(r"[a-z][a-z0-9._]{0,10}@[a-z]{2,8}\.(com|com\.br|org)", fullmatch=True)
_WORDS = st.lists(st.sampled_from(["oi", "meu", "numero", "é", "e", "o", "email", "cpf", ":", ",", "liga"]), max_size=4)


@settings(max_examples=300, deadline=None)
@given(prefix=_WORDS, secret=st.one_of(brazilian_phone(), cpf(), _EMAILS), suffix=_WORDS)
def test_no_identifier_survives_redaction(prefix: list[str], secret: str, suffix: list[str]) -> None:
    text = " ".join([*prefix, secret, *suffix])
    out = redact(text)
    assert _clean(out), (text, out)
    assert secret not in out
    digits = re.sub(r"\D", "", secret)
    if len(digits) >= 8:
        assert digits not in re.sub(r"\D", "", out)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["inbound", "outbound"]), st.text(max_size=400)), max_size=60),
    st.integers(100, 1500),
)
def test_transcript_fits_the_token_budget(messages: list[tuple[str, str]], budget: int) -> None:
    items = [TranscriptMessage(d, "text", t) for d, t in messages]
    text, truncated = render(items, budget)
    assert estimate_tokens(text) <= budget + 16  # the omission marker's estimate is approximate
    if not truncated:
        assert text.count("\n") == max(0, len(items) - 1)
    if truncated:
        assert "omitted" in text or len(items) > 0


def test_truncation_keeps_opening_and_ending() -> None:
    items = [TranscriptMessage("inbound", "text", f"mensagem número {i} " + "x" * 80) for i in range(100)]
    text, truncated = render(items, 300)
    assert truncated and "número 0 " in text and "número 99 " in text and "messages omitted" in text


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Muito obrigado, ótimo atendimento!", 1),
        ("Péssimo, o pedido chegou atrasado e quebrado", -1),
        ("Não gostei do serviço", -1),
        ("not bad, actually great", 1),
        ("terrible service, worst ever", -1),
        ("qual o horário de funcionamento?", 0),
    ],
)
def test_lexicon_sentiment_pt_and_en(text: str, sign: int) -> None:
    value = sentiment(text)
    assert -1 <= value <= 1
    assert (value > 0) - (value < 0) == sign


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_sentiment_is_bounded(text: str) -> None:
    assert -1.0 <= sentiment(text) <= 1.0


def test_custom_taxonomy_matches_topic_names() -> None:
    analyzer = RuleAnalyzer(["garantia", "troca", "outros"], keywords={})
    assert analyzer.topic("quero usar a garantia do produto") == "garantia"
    assert analyzer.topic("bom dia") == "outros"


def test_schemas_reject_values_outside_the_allowed_sets() -> None:
    topics = ["billing", "other"]
    good = {
        "topic": "billing",
        "intent": "question",
        "sentiment": 0.2,
        "urgency": "low",
        "summary": "ok",
        "resolution_quality": "resolved",
    }
    assert parse_analysis(good, topics).topic == "billing"
    for bad in ({**good, "topic": "weather"}, {**good, "sentiment": 2}, {**good, "extra": 1}, {"topic": "billing"}):
        with pytest.raises(InvalidAnswerError):
            parse_analysis(bad, topics)
    schema = analysis_schema(topics)
    assert schema["properties"]["topic"]["enum"] == topics and schema["additionalProperties"] is False
    with pytest.raises(InvalidAnswerError):
        parse_routing({"team_id": "x", "urgency": "low", "priority": 1, "confidence": 1, "reason": ""}, ["t1"])


_TAXONOMY = ["billing", "delivery", "technical_support", "cancellation", "other"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["inbound", "outbound"]), st.text(max_size=120), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from(["resolved", "expired"]),
    brazilian_phone(),
)
def test_rule_analysis_is_valid_deterministic_and_content_free(
    raw: list[tuple[str, str, bool]], status: str, phone: str
) -> None:
    from llm.rules import ConversationFacts

    messages = [TranscriptMessage(d, "text", f"{t} {phone}", automated=a) for d, t, a in raw]
    facts = ConversationFacts(status, False, 0)
    analyzer = RuleAnalyzer(_TAXONOMY)
    first = analyzer.analyze(messages, facts)
    assert first == analyzer.analyze(messages, facts)
    assert first.topic in _TAXONOMY and -1 <= first.sentiment <= 1
    assert re.sub(r"\D", "", phone) not in re.sub(r"\D", "", first.summary)
    if not any(d == "outbound" and not a for d, _, a in raw):
        assert first.resolution_quality == "unresolved"
