"""`linli nlu`: train, test and query the language model."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from bot.config import load_config


def cmd_nlu_train(args) -> int:
    from nlu.engine import model_path, train

    config = load_config()
    target = model_path(config)
    if target.is_file() and not args.force:
        print(f"NLU model is up to date: {target}", file=sys.stderr)
        return 0
    print(f"training the NLU model {target.name} (about a minute; progress below)",
          file=sys.stderr)
    # Progress: Rasa's training hooks name each pipeline component as it starts and ends
    # (component names only, never training text).
    logging.getLogger("rasa.engine.training.hooks").setLevel(logging.INFO)
    started = time.monotonic()
    path, _ = train(config, force=args.force)
    print(f"NLU model written in {time.monotonic() - started:.0f} s: {path}", file=sys.stderr)
    return 0


def cmd_nlu_test(args) -> int:
    from nlu.engine import NoModel, RasaUnderstander
    from nlu.evaluate import TEST_SETS, evaluate, report

    config = load_config()
    try:
        understander = RasaUnderstander(config)
    except NoModel as exc:
        print(f"linli nlu test: {exc}", file=sys.stderr)
        return 2
    print(f"model {understander.path.name}, held-out sets under nlu/tests/", file=sys.stderr)
    for kind, pattern in TEST_SETS.items():
        print(f"\n{kind} set (nlu/tests/{pattern.format(language='<language>')})\n")
        print(report(evaluate(understander, config, kind)))
    return 0


def cmd_nlu_predict(args) -> int:
    import json

    from nlu.engine import NoModel, RasaUnderstander

    # Only our JSON lines may reach standard output: whatever Rasa, TensorFlow or their C
    # libraries print while loading goes to standard error instead.
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        config = load_config()
        understander = RasaUnderstander(config)
    except NoModel as exc:
        print(f"linli nlu predict: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.stdout.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    out = sys.stdout

    async def run() -> None:
        for line in sys.stdin:
            try:
                item = json.loads(line)
                text = item["text"]
                if not isinstance(text, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                out.write(json.dumps({"error": "expected {\"text\": ..., \"lang\": ...}"}) + "\n")
                out.flush()
                continue
            understood = await understander.parse(text, item.get("lang"))
            intent, confidence = understood.intent, understood.confidence
            if intent == "nlu_fallback" and understood.ranking:
                intent, confidence = understood.ranking[0]
            out.write(json.dumps({
                "intent": intent,
                "confidence": round(confidence, 4),
                "entities": understood.entities,
            }, ensure_ascii=False) + "\n")
            out.flush()

    asyncio.run(run())
    return 0


def cmd_nlu_serve(args) -> int:
    """Replaces this process with Rasa's own HTTP server on the model `linli serve` would load,
    so that workers ask it (LINLI_NLU_URL) instead of each holding the model."""
    from bot.config import PROJECT_ROOT
    from nlu.engine import NoModel, find_model

    config = load_config()
    try:
        model = find_model(config).resolve()
    except NoModel as exc:
        print(f"linli nlu serve: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print(f"linli nlu serve: Rasa's API has no authentication and can load other models "
              f"(PUT /model): anyone who reaches {args.host}:{args.port} can use it; keep it "
              f"on a private network", file=sys.stderr)
    env = dict(os.environ)
    # Our components (nlu.components) are imported by the model: the project must be importable.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3",
               LOG_LEVEL_LIBRARIES="ERROR", SQLALCHEMY_SILENCE_UBER_WARNING="1",
               PYTHONWARNINGS="ignore")
    command = [sys.executable, "-m", "rasa", "run", "--enable-api", "--model", str(model),
               "--interface", args.host, "--port", str(args.port),
               # WARNING: Rasa logs each message's text at DEBUG, and its start-up at INFO.
               "--verbose" if args.verbose else "--quiet"]
    print(f"serving {model.name} at http://{args.host}:{args.port} (POST /model/parse); "
          f"workers use it with LINLI_NLU_URL=http://{args.host}:{args.port}",
          file=sys.stderr, flush=True)
    # No endpoints.yml or credentials.yml of whatever folder this was started from.
    os.chdir(PROJECT_ROOT)
    os.execve(sys.executable, command, env)
    return 0  # not reached: the process is Rasa's server now
