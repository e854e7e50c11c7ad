"""Deterministic rule-based analyser (``model = "rules-v1"``): keyword topics and intent, lexicon
sentiment for PT-BR and EN, urgency, a content-free summary and resolution quality.

Used when no LLM is configured or a tenant's budget is spent. Same input, same output, always.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llm import RULES_MODEL
from llm.schemas import ConversationAnalysis
from llm.transcript import TranscriptMessage

# Keywords per default topic (accent-free, lower case; PT-BR and EN). A configured topic without an
# entry here is matched by the words of its own name.
TOPIC_KEYWORDS: dict[str, tuple[str, ...]] = {
    "billing": (
        "boleto",
        "fatura",
        "cobranca",
        "cobrado",
        "pagamento",
        "pagar",
        "paguei",
        "pix",
        "reembolso",
        "estorno",
        "nota fiscal",
        "invoice",
        "bill",
        "billing",
        "charge",
        "charged",
        "payment",
        "refund",
        "price",
        "preco",
    ),
    "delivery": (
        "entrega",
        "entregue",
        "pedido",
        "rastreio",
        "rastreamento",
        "frete",
        "correios",
        "transportadora",
        "chegou",
        "chegar",
        "delivery",
        "shipping",
        "shipment",
        "tracking",
        "order",
        "package",
        "encomenda",
    ),
    "technical_support": (
        "erro",
        "bug",
        "travando",
        "trava",
        "nao funciona",
        "parou",
        "defeito",
        "senha",
        "login",
        "acesso",
        "instalar",
        "configurar",
        "app",
        "aplicativo",
        "site",
        "error",
        "crash",
        "broken",
        "not working",
        "password",
    ),
    "sales": (
        "comprar",
        "compra",
        "orcamento",
        "cotacao",
        "desconto",
        "promocao",
        "produto",
        "disponivel",
        "estoque",
        "catalogo",
        "buy",
        "purchase",
        "quote",
        "discount",
        "available",
        "stock",
        "plano",
        "plan",
    ),
    "account": (
        "cadastro",
        "conta",
        "perfil",
        "alterar dados",
        "atualizar dados",
        "endereco",
        "account",
        "profile",
        "sign up",
        "register",
        "update my",
    ),
    "cancellation": ("cancelar", "cancelamento", "desistir", "encerrar", "cancel", "unsubscribe", "terminate"),
    "complaint": (
        "reclamacao",
        "reclamar",
        "absurdo",
        "pessimo",
        "procon",
        "reclame aqui",
        "descaso",
        "complaint",
        "unacceptable",
        "terrible",
        "worst",
    ),
    "scheduling": (
        "agendar",
        "agendamento",
        "horario",
        "marcar",
        "remarcar",
        "consulta",
        "visita",
        "schedule",
        "appointment",
        "booking",
        "reschedule",
    ),
}

INTENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "cancellation": TOPIC_KEYWORDS["cancellation"],
    "complaint": TOPIC_KEYWORDS["complaint"] + ("nao resolveram", "ninguem responde", "still waiting"),
    "purchase": ("comprar", "quero comprar", "orcamento", "cotacao", "buy", "purchase", "quote", "order now"),
    "request": (
        "preciso",
        "quero",
        "gostaria",
        "solicito",
        "por favor",
        "pode",
        "poderia",
        "need",
        "want",
        "please",
        "could you",
        "can you",
    ),
    "feedback": ("obrigado", "obrigada", "otimo atendimento", "parabens", "thanks", "thank you", "great service"),
    "question": ("?", "como", "quando", "qual", "onde", "quanto", "how", "when", "what", "where", "which"),
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_INTENT_ORDER = ("cancellation", "complaint", "purchase", "request", "question", "feedback")

POSITIVE = _words(
    "obrigado obrigada otimo otima excelente perfeito perfeita bom boa adorei amei gostei maravilhoso "
    "rapido resolvido funcionou parabens legal top feliz satisfeito satisfeita show "
    "thanks thank great excellent perfect good love loved liked amazing fast resolved worked happy "
    "satisfied awesome nice wonderful helpful"
)
NEGATIVE = _words(
    "ruim pessimo pessima horrivel terrivel absurdo demora demorado atrasado atraso problema erro "
    "defeito quebrado reclamacao insatisfeito insatisfeita raiva decepcionado decepcionada lixo nunca "
    "descaso cancelar golpe enganado errado irritado frustrado "
    "bad terrible horrible awful worst slow late problem error broken complaint unhappy angry "
    "disappointed useless never scam wrong frustrated annoyed hate"
)
NEGATIONS = _words("nao nem nunca jamais sem not no never without dont don't isn't wasn't")
INTENSIFIERS = _words("muito muita super bem extremamente totalmente very really so extremely totally")
URGENT = (
    "urgente",
    "urgencia",
    "emergencia",
    "imediato",
    "imediatamente",
    "agora",
    "hoje",
    "ja",
    "rapido",
    "asap",
    "urgent",
    "emergency",
    "immediately",
    "right now",
    "today",
)

_WORD = re.compile(r"[a-z0-9']+")


def fold(text: str) -> str:
    """Lower case without accents (``Não`` → ``nao``) so PT-BR keywords match however typed."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _contains(text: str, keyword: str) -> bool:
    if keyword == "?":
        return "?" in text
    return re.search(rf"(?<![a-z0-9]){re.escape(keyword)}(?![a-z0-9])", text) is not None


def sentiment(text: str) -> float:
    """Lexicon sentiment in [-1, 1]: negation flips the next two words, intensifiers weigh 1.5."""
    words = _WORD.findall(fold(text))
    score = 0.0
    hits = 0
    negate_left = 0  # a negation flips the next polarity word within two words
    for i, word in enumerate(words):
        if word in NEGATIONS:
            negate_left = 3
            continue
        negate_left = max(0, negate_left - 1)
        polarity = 1.0 if word in POSITIVE else -1.0 if word in NEGATIVE else 0.0
        if polarity == 0.0:
            continue
        if negate_left:
            polarity = -polarity
            negate_left = 0
        if i > 0 and words[i - 1] in INTENSIFIERS:
            polarity *= 1.5
        score += polarity
        hits += 1
    if hits == 0:
        return 0.0
    value = score / (hits + 1.0)  # damped: one word alone is not certainty
    return round(max(-1.0, min(1.0, value)), 3)


def topic_scores(text: str, topics: Sequence[str], keywords: Mapping[str, Sequence[str]]) -> dict[str, int]:
    folded = fold(text)
    scores: dict[str, int] = {}
    for topic in topics:
        words = keywords.get(topic) or tuple(fold(topic).replace("_", " ").split())
        scores[topic] = sum(1 for k in words if _contains(folded, k))
    return scores


@dataclass(frozen=True)
class ConversationFacts:
    """What silver knows about a closed conversation besides its messages."""

    status: str  # resolved | expired
    first_response_at_known: bool
    outbound_count: int


class RuleAnalyzer:
    """The rule-based analyser. ``topics`` is the configured taxonomy (``other`` is the fallback)."""

    model = RULES_MODEL

    def __init__(self, topics: Sequence[str], keywords: Mapping[str, Sequence[str]] | None = None) -> None:
        self.topics = list(topics)
        self.keywords = dict(TOPIC_KEYWORDS if keywords is None else keywords)
        self.fallback_topic = "other" if "other" in self.topics else self.topics[-1]

    def topic(self, text: str) -> str:
        scores = topic_scores(text, [t for t in self.topics if t != self.fallback_topic], self.keywords)
        best = max(scores.items(), key=lambda kv: (kv[1], -self.topics.index(kv[0])), default=(None, 0))
        return best[0] if best[0] is not None and best[1] > 0 else self.fallback_topic

    def analyze(self, messages: Sequence[TranscriptMessage], facts: ConversationFacts) -> ConversationAnalysis:
        customer = " \n".join(m.text or "" for m in messages if m.direction == "inbound")
        folded = fold(customer)
        topic = self.topic(customer)
        intent = next((i for i in _INTENT_ORDER if any(_contains(folded, k) for k in INTENT_KEYWORDS[i])), "other")
        score = sentiment(customer)
        urgent_hits = sum(1 for k in URGENT if _contains(folded, k))
        if urgent_hits >= 2 or (urgent_hits and score <= -0.3) or customer.count("!") >= 4:
            urgency = "high"
        elif urgent_hits or score <= -0.3:
            urgency = "medium"
        else:
            urgency = "low"
        human_replied = any(m.direction == "outbound" and not m.automated for m in messages)
        if facts.status == "resolved" and human_replied:
            quality = "resolved"
        elif not human_replied:
            quality = "unresolved"
        else:
            quality = "unknown"
        inbound = sum(1 for m in messages if m.direction == "inbound")
        outbound = len(messages) - inbound
        mood = "positive" if score > 0.2 else "negative" if score < -0.2 else "neutral"
        summary = (
            f"Conversation about {topic.replace('_', ' ')} ({intent}); {inbound} customer and {outbound} "
            f"business messages; customer sentiment {mood}; {facts.status}"
            f"{' with a human reply' if human_replied else ' without a human reply'}."
        )
        return ConversationAnalysis(
            topic=topic,
            intent=intent,  # type: ignore[arg-type]
            sentiment=score,
            urgency=urgency,  # type: ignore[arg-type]
            summary=summary,
            resolution_quality=quality,  # type: ignore[arg-type]
        )
