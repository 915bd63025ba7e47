"""An SMTP server that keeps every mail as a file: the demo's outbox viewer and the tests'
relay (aiosmtpd, a real SMTP implementation).

    python3 smtp_sink.py --port 2525 --dir .run/mail [--mode ok|tempfail|permfail|drop|hang]
                         [--starttls CERT KEY | --tls CERT KEY]

Each accepted mail becomes <dir>/<ns>-<n>.eml (as received) and a .json beside it (from, to,
subject, text, html) written after the .eml, atomically, so a reader never sees half a mail.
The modes make the relay misbehave the ways a real one does: 451, 554, a dropped connection
after DATA, a relay that never answers DATA. With --starttls the relay requires STARTTLS
before MAIL; with --tls it speaks TLS from the first byte (port 465 style).
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import signal
import ssl
import threading
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, mode):
        self.dir = directory
        self.mode = mode
        self.counter = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "tempfail":
            return "451 4.3.0 Try again later"
        if self.mode == "permfail":
            return "554 5.7.1 Relaying denied"
        if self.mode == "drop":
            server.transport.abort()
            return "421 4.4.2 Connection dropped"
        if self.mode == "hang":
            await asyncio.sleep(3600)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        name = f"{time.time_ns()}-{next(self.counter)}"
        with open(os.path.join(self.dir, name + ".eml.tmp"), "wb") as f:
            f.write(raw)
        os.replace(os.path.join(self.dir, name + ".eml.tmp"), os.path.join(self.dir, name + ".eml"))
        doc = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(msg["subject"] or ""),
            "message_id": str(msg["message-id"] or ""),
            "text": text.get_content() if text else "",
            "html": html.get_content() if html else "",
        }
        tmp = os.path.join(self.dir, name + ".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False)
        os.replace(tmp, os.path.join(self.dir, name + ".json"))
        print(f"mail to {', '.join(envelope.rcpt_tos)}: {doc['subject']}", flush=True)
        return "250 2.0.0 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mode", default="ok", choices=["ok", "tempfail", "permfail", "drop", "hang"])
    ap.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    tls = {}
    for flag, pair in (("starttls", args.starttls), ("tls", args.tls)):
        if pair:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*pair)
            tls = ({"tls_context": ctx, "require_starttls": True} if flag == "starttls"
                   else {"ssl_context": ctx})
    controller = Controller(Sink(args.dir, args.mode), hostname=args.host, port=args.port,
                            ready_timeout=10, **tls)
    controller.start()
    print(f"smtp sink on {args.host}:{args.port} ({args.mode}), mail under {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
