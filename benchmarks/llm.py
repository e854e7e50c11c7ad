"""LLM analysis benchmark (``python -m benchmarks.llm [--conversations 10000] [--latency 0.3]``).

Writes ``N`` closed conversations (6 messages each, PT-BR texts with phones/e-mails/CPFs to redact)
to a temporary silver lake, registers their instance in a SQLite ops store and runs
:func:`llm.insights.build_insights` against the fake OpenAI-compatible server (``tests/fakes/llm.py``)
answering after ``--latency`` seconds:

- throughput with the concurrency limit (``--concurrency``, default the setting: 16) — target ≥ 25
  conversations/s at 300 ms latency; baseline in the same run: the same code with concurrency 1 on a
  sample (what a sequential client would do);
- a second run over the unchanged lake: requests that reach the server (target 0: the cache);
- privacy: requests that carried a raw identifier (target 0; the fake server checks every request).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from benchmarks.workdir import scratch_root
from core.identity import conversation_id
from core.settings import Settings
from llm.client import LLMClient
from llm.insights import build_insights
from silver.schema import (
    CONVERSATIONS,
    CONVERSATIONS_PARTITIONS,
    CONVERSATIONS_SCHEMA,
    MESSAGES,
    MESSAGES_PARTITIONS,
    MESSAGES_SCHEMA,
)
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from tests.fakes.llm import FakeLLM

OPENERS = [
    "Olá, meu boleto de {month} veio com valor errado, CPF {cpf}",
    "Bom dia! Meu pedido {order} ainda não chegou, podem verificar?",
    "O aplicativo trava quando faço login, meu email é {email}",
    "Quero cancelar minha assinatura, me liguem no ({ddd}) 9{a}-{b}",
    "Vocês têm o produto {order} em estoque? Quero comprar duas unidades",
    "Preciso remarcar minha visita de amanhã para {month}",
    "Péssimo atendimento, estou esperando há {days} dias uma resposta!",
]
REPLIES = ["Olá! Vou verificar para você.", "Um momento, por favor.", "Resolvido! Algo mais?", "Obrigado pelo contato."]
FOLLOWUPS = ["Obrigado, ficou ótimo", "Ainda não resolveu", "Pode me mandar por whatsapp?", "Ok, aguardo"]
MONTHS = ["janeiro", "fevereiro", "março", "abril", "maio", "junho"]


def make_silver(lake: Lake, instance_id: str, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 12, tzinfo=UTC)
    convs, msgs = [], []
    for i in range(n):
        contact = f"+55119{i:08d}"
        opened = start + timedelta(minutes=3 * i)
        opener = rng.choice(OPENERS).format(
            month=rng.choice(MONTHS),
            cpf=f"{rng.randrange(1000):03d}.{rng.randrange(1000):03d}.{rng.randrange(1000):03d}-{rng.randrange(100):02d}",
            order=rng.randrange(10_000, 99_999),
            email=f"cliente{i}@example.com",
            ddd=rng.randrange(11, 99),
            a=rng.randrange(1000, 9999),
            b=rng.randrange(1000, 9999),
            days=rng.randrange(2, 30),
        )
        texts = [
            ("inbound", opener),
            ("outbound", rng.choice(REPLIES)),
            ("inbound", f"{rng.choice(FOLLOWUPS)} (protocolo {i})"),  # every transcript is unique
            ("outbound", rng.choice(REPLIES)),
            ("inbound", rng.choice(FOLLOWUPS)),
            ("outbound", "Conversa encerrada. Obrigado!"),
        ]
        cid = conversation_id(instance_id, contact, f"b{i}-0")
        for j, (direction, text) in enumerate(texts):
            at = opened + timedelta(seconds=40 * j)
            msgs.append(
                {
                    "instance_id": instance_id,
                    "message_id": f"b{i}-{j}",
                    "chat_type": "direct",
                    "contact_key": contact,
                    "direction": direction,
                    "kind": "text",
                    "text": text,
                    "event_at": at,
                    "event_month": at.strftime("%Y-%m"),
                    "automated": False,
                    "conversation_id": cid,
                }
            )
        closed = opened + timedelta(seconds=40 * (len(texts) - 1))
        convs.append(
            {
                "conversation_id": cid,
                "instance_id": instance_id,
                "contact_key": contact,
                "origin": "inbound",
                "opening_message_id": f"b{i}-0",
                "opened_at": opened,
                "status": "resolved",
                "resolved_at": closed,
                "closed_at": closed,
                "last_message_at": closed,
                "opened_month": opened.strftime("%Y-%m"),
            }
        )

    def table(rows: list[dict], schema: pa.Schema) -> pa.Table:
        return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)

    lake.write(
        CONVERSATIONS, table(convs, CONVERSATIONS_SCHEMA), mode="overwrite", partition_by=CONVERSATIONS_PARTITIONS
    )
    lake.write(MESSAGES, table(msgs, MESSAGES_SCHEMA), mode="overwrite", partition_by=MESSAGES_PARTITIONS)


def run(conversations: int, latency: float, concurrency: int, baseline_sample: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="llm-", dir=scratch_root()) as tmp, FakeLLM(latency=latency) as fake:
        root = Path(tmp)
        settings = Settings(
            lake_uri=str(root / "lake"),
            database_url=f"sqlite:///{root / 'ops.db'}",
            llm_base_url=fake.base_url,
            llm_model="fake-model",
            llm_max_concurrency=concurrency,
            llm_daily_request_budget=10_000_000,
            llm_daily_token_budget=10_000_000_000,
        )
        engine = make_engine(settings.database_url)
        migrate.upgrade(engine)
        add_instance(engine, "bench", "bench-account")
        lake = Lake.from_settings(settings)

        # Baseline: the same pipeline with one request in flight, on a sample.
        make_silver(lake, "bench", baseline_sample, seed=1)
        seq = LLMClient(fake.base_url, model="fake-model", max_concurrency=1, timeout=10)
        t0 = time.perf_counter()
        build_insights(lake, engine=engine, settings=settings.model_copy(update={"llm_max_concurrency": 1}), client=seq)
        baseline_rate = baseline_sample / (time.perf_counter() - t0)
        seq.close()

        t0 = time.perf_counter()
        make_silver(lake, "bench", conversations, seed=2)
        print(f"silver: {conversations} closed conversations written in {time.perf_counter() - t0:.1f} s")
        fake.reset()
        client = LLMClient(fake.base_url, model="fake-model", max_concurrency=concurrency, timeout=10)
        t0 = time.perf_counter()
        first = build_insights(lake, engine=engine, settings=settings, client=client)["conversation_insights"]
        elapsed = time.perf_counter() - t0
        calls_first = fake.calls
        fake.reset()
        t0 = time.perf_counter()
        second = build_insights(lake, engine=engine, settings=settings, client=client)["conversation_insights"]
        elapsed_second = time.perf_counter() - t0
        client.close()
        engine.dispose()
        return {
            "conversations": conversations,
            "latency_ms": latency * 1000,
            "concurrency": concurrency,
            "first_run_s": elapsed,
            "rate": conversations / elapsed,
            "baseline_rate": baseline_rate,
            "llm_calls_first": calls_first,
            "llm_ok": first.get("llm_ok", 0),
            "failed": first.get("failed", 0),
            "second_run_s": elapsed_second,
            "duplicate_calls_second": fake.calls,
            "cache_hits_second": second.get("cache_hits", 0),
            "privacy_violations": len(fake.violations),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.3, help="Fake server latency per request (s).")
    parser.add_argument("--concurrency", type=int, default=Settings().llm_max_concurrency)
    parser.add_argument("--baseline-sample", type=int, default=40)
    args = parser.parse_args()
    r = run(args.conversations, args.latency, args.concurrency, args.baseline_sample)
    print(
        f"first run: {r['conversations']} conversations in {r['first_run_s']:.1f} s = {r['rate']:.1f} conv/s "
        f"(concurrency {r['concurrency']}, {r['latency_ms']:.0f} ms latency; target >= 25)"
    )
    print(
        f"baseline (concurrency 1, same run): {r['baseline_rate']:.2f} conv/s -> "
        f"speed-up x{r['rate'] / r['baseline_rate']:.1f}"
    )
    print(
        f"LLM calls first run: {r['llm_calls_first']} (ok {r['llm_ok']}, failed {r['failed']}; target = conversations)"
    )
    print(
        f"second run: {r['second_run_s']:.1f} s, duplicate LLM calls {r['duplicate_calls_second']} (target 0), "
        f"cache hits {r['cache_hits_second']}"
    )
    print(f"privacy violations seen by the fake server: {r['privacy_violations']} (target 0)")
    ok = r["rate"] >= 25 and r["duplicate_calls_second"] == 0 and r["privacy_violations"] == 0
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
