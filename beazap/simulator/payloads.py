"""Evolution API v2 payload shapes (see docs/receiver.md and the samples in tests/data/evolution).

Pure builders: given a random generator and the facts of an event, return the ``data`` object (or
the whole envelope) exactly as Evolution posts it, including its quirks — media numbers as
``{"low": …}`` objects or strings, ``ephemeralMessage``/``viewOnceMessageV2`` wrappers, timestamps as
numbers or strings.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DESTINATION = "https://beazap.example.com/webhooks/evolution"
HEX = "0123456789ABCDEF"

TEXTS_IN = (
    "Oi, meu pedido ainda não chegou",
    "Boa tarde! Vocês têm esse produto em estoque?",
    "Preciso da segunda via do boleto",
    "Qual o horário de funcionamento?",
    "Quero cancelar minha assinatura",
    "O entregador não encontrou meu endereço",
    "Consigo trocar o tamanho?",
    "Meu cartão foi cobrado duas vezes",
    "Vocês entregam no sábado?",
    "Obrigado!",
    "ok",
    "Ainda estou aguardando retorno",
    "Pode me ligar?",
    "Segue o comprovante",
)
TEXTS_OUT = (
    "Olá! Vou verificar agora mesmo.",
    "Seu pedido sai hoje para entrega.",
    "Pode me passar o número do pedido?",
    "Já encaminhei para o financeiro.",
    "Prontinho, resolvido! Posso ajudar em algo mais?",
    "Nosso horário é de segunda a sexta, das 8h às 18h.",
    "Enviei a segunda via no seu e-mail.",
    "Vou transferir para o time responsável.",
)
GREETING = "Olá! Recebemos sua mensagem e logo um atendente vai responder. 🙂"
CAMPAIGN = "Olá! Seu pedido foi confirmado. Qualquer dúvida, responda esta mensagem."
EMOJIS = ("👍", "❤️", "😂", "🙏", "😮", "😢")
NAMES = (
    "Mariana", "Carlos", "Ana", "João", "Beatriz", "Rafa", "Pedro", "Juliana", "Lucas", "Fernanda",
    "Gabriel", "Camila", "Bruno", "Larissa", "Thiago", "Patrícia", "Diego", "Aline", "Rodrigo", "Vitória",
)  # fmt: skip
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker", "location", "contact")
MEDIA_WEIGHTS = (40, 25, 8, 12, 8, 4, 3)


def hex_id(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(HEX) for _ in range(n))


def message_id(rng: random.Random, source: str) -> str:
    """A key.id whose format matches the source Evolution guesses from it."""
    if source == "android":
        return hex_id(rng, 32)
    if source == "ios":
        return "3A" + hex_id(rng, 18)
    if source == "web":
        return "3EB0" + hex_id(rng, 18)
    return "3EB0" + hex_id(rng, 20)  # sent through the API (Baileys ids)


def cuid(rng: random.Random) -> str:
    """Evolution's database id (``messageId`` of status updates)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "cm" + "".join(rng.choice(alphabet) for _ in range(23))


def odd_number(rng: random.Random, value: int) -> Any:
    """A number as some release encodes it: plain, string, or a protobuf Long object."""
    r = rng.random()
    if r < 0.4:
        return value
    if r < 0.7:
        return str(value)
    return {"low": value, "high": 0, "unsigned": True}


def media_url(rng: random.Random, kind: str) -> str:
    return f"https://mmg.whatsapp.net/v/t62.{rng.randint(7110, 7119)}-24/{hex_id(rng, 12).lower()}.enc"


def content(
    rng: random.Random, kind: str, text: str | None, t: int, ephemeral: bool = False
) -> tuple[dict[str, Any], str, str | None]:
    """``(message, messageType, text)`` for a message of ``kind`` (text is the caption for media).

    ``ephemeral``: the chat has disappearing messages on, so content comes wrapped in
    ``ephemeralMessage`` (Evolution's ``messageType`` is then the wrapper's name).
    """
    if kind == "text":
        assert text is not None
        if rng.random() < 0.15:
            body, mtype = {"extendedTextMessage": {"text": text}}, "extendedTextMessage"
        else:
            body, mtype = {"conversation": text}, "conversation"
        if ephemeral:
            return {"ephemeralMessage": {"message": body}}, "ephemeralMessage", text
        return body, mtype, text
    caption: str | None = None
    msg: dict[str, Any]
    if kind == "image":
        caption = text if rng.random() < 0.5 else None
        msg = {"url": media_url(rng, kind), "mimetype": "image/jpeg"}
        if caption:
            msg["caption"] = caption
        msg.update(
            fileLength=odd_number(rng, rng.randint(20_000, 900_000)),
            height=rng.choice((1280, 1600, 960)),
            width=rng.choice((720, 960, 1200)),
            mediaKeyTimestamp=odd_number(rng, t - 1),
        )
        body, mtype = {"imageMessage": msg}, "imageMessage"
    elif kind == "audio":
        msg = {
            "url": media_url(rng, kind),
            "mimetype": "audio/ogg; codecs=opus",
            "fileLength": odd_number(rng, rng.randint(5_000, 400_000)),
            "seconds": rng.randint(2, 95),
            "ptt": rng.random() < 0.9,
            "mediaKeyTimestamp": odd_number(rng, t - 1),
        }
        body, mtype = {"audioMessage": msg}, "audioMessage"
    elif kind == "video":
        caption = text if rng.random() < 0.3 else None
        msg = {"url": media_url(rng, kind), "mimetype": "video/mp4", "seconds": rng.randint(3, 60)}
        if caption:
            msg["caption"] = caption
        msg["fileLength"] = odd_number(rng, rng.randint(300_000, 15_000_000))
        msg["gifPlayback"] = False
        body, mtype = {"videoMessage": msg}, "videoMessage"
    elif kind == "document":
        name = rng.choice(("comprovante.pdf", "nota_fiscal.pdf", "contrato.pdf", "planilha.xlsx"))
        mimetype = (
            "application/pdf"
            if name.endswith(".pdf")
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        msg = {
            "url": media_url(rng, kind),
            "mimetype": mimetype,
            "title": name,
            "fileLength": odd_number(rng, rng.randint(10_000, 2_000_000)),
            "pageCount": rng.randint(1, 6),
            "fileName": name,
        }
        body, mtype = {"documentMessage": msg}, "documentMessage"
    elif kind == "sticker":
        msg = {
            "url": media_url(rng, kind),
            "mimetype": "image/webp",
            "fileLength": odd_number(rng, rng.randint(8_000, 60_000)),
            "isAnimated": rng.random() < 0.2,
        }
        body, mtype = {"stickerMessage": msg}, "stickerMessage"
    elif kind == "location":
        msg = {
            "degreesLatitude": round(-23.55 + rng.uniform(-0.2, 0.2), 6),
            "degreesLongitude": round(-46.63 + rng.uniform(-0.2, 0.2), 6),
        }
        if rng.random() < 0.5:
            msg["name"] = "Minha casa"
            msg["address"] = "Rua das Flores, 123"
        body, mtype = {"locationMessage": msg}, "locationMessage"
    elif kind == "contact":
        nm = rng.choice(NAMES)
        digits = "55119" + "".join(rng.choice("0123456789") for _ in range(8))
        vcard = f"BEGIN:VCARD\nVERSION:3.0\nFN:{nm}\nTEL;type=CELL;waid={digits}:+{digits}\nEND:VCARD"
        body, mtype = {"contactMessage": {"displayName": nm, "vcard": vcard}}, "contactMessage"
    else:
        raise ValueError(f"unknown kind {kind!r}")
    # Wrappers: view-once media and disappearing-messages chats.
    if kind in ("image", "video") and rng.random() < 0.1:
        return {"viewOnceMessageV2": {"message": body}}, "viewOnceMessageV2", caption
    if ephemeral:
        return {"ephemeralMessage": {"message": body}}, "ephemeralMessage", caption
    return body, mtype, caption


def local_wall_clock(epoch: float, tz: ZoneInfo) -> str:
    """Envelope ``date_time``: the server's local wall clock written with a ``Z`` (not UTC!)."""
    local = datetime.fromtimestamp(epoch, tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}Z"


def iso_utc(epoch: float) -> str:
    dt = datetime(1970, 1, 1) + timedelta(seconds=epoch)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def envelope(
    event: str,
    instance: str,
    data: Any,
    *,
    sent_at: float,
    server_tz: ZoneInfo,
    sender: str | None,
    server_url: str,
    apikey: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event,
        "instance": instance,
        "data": data,
        "destination": DESTINATION,
        "date_time": local_wall_clock(sent_at, server_tz),
    }
    if sender is not None:
        body["sender"] = sender
    body["server_url"] = server_url
    body["apikey"] = apikey
    return body


def event_suffix(event: str) -> str:
    """``messages.upsert`` → ``/messages-upsert`` (webhook_by_events URLs)."""
    return "/" + event.replace(".", "-").replace("_", "-").lower()
