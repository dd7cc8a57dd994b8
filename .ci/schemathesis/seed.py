"""Seeds a fresh fakemail with a few real messages, run by `.ci/schemathesis/run` before the
admin pass: without them, the operator's message operations (`/api/v1/admin/messages/{id}`,
its `raw` and `attachments/{index}`, the listing's filters, the wait) only ever answer 404 or
an empty page. An account sends three over the REST API, and two arrive over SMTP, the last, the newest,
with an attachment (the REST API sends none), for the links from the listing's first message.

Usage: seed.py HTTP_URL SMTP_ADDR (host:port); hooks.py calls `seed` again when the pass has
deleted them all.
"""

import secrets
import smtplib
import sys
from email.message import EmailMessage

import requests


def seed(url, smtp_addr):
    """Stores five messages in the server at `url` (and `smtp_addr`, `host:port`)."""
    host, port = smtp_addr.rsplit(":", 1)

    account = {
        "email": f"seed-{secrets.token_hex(4)}@example.test",
        "password": secrets.token_urlsafe(18),
    }
    requests.post(f"{url}/api/v1/auth/register", json=account, timeout=10).raise_for_status()
    r = requests.post(f"{url}/api/v1/auth/login", json=account, timeout=10)
    r.raise_for_status()
    auth = {"Authorization": f"Bearer {r.json()['token']}"}

    for body in (
        [
            {"to": ["alice@example.test"], "subject": "Hello", "text": "Hi Alice."},
            {
                "to": ["bob@example.test", account["email"]],
                "cc": ["carol@example.test"],
                "subject": "Minutes",
                "text": "The minutes.",
                "html": "<p>The <b>minutes</b>.</p>",
            },
            {"to": ["alice@example.test"], "bcc": ["dave@example.test"], "subject": "Re: Hello",
             "text": "Again."},
        ]
    ):
        r = requests.post(f"{url}/api/v1/messages", json=body, headers=auth, timeout=10)
        r.raise_for_status()

    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        m = EmailMessage()
        m["From"] = "noreply@example.test"
        m["To"] = f"bob@example.test, {account['email']}"
        m["Subject"] = "Plain"
        m.set_content("Over SMTP.")
        smtp.send_message(m)
        m = EmailMessage()
        m["From"] = "reports@example.test"
        m["To"] = "alice@example.test"
        m["Subject"] = "Report with an attachment"
        m.set_content("The report is attached.")
        m.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="report.csv")
        smtp.send_message(m)


if __name__ == "__main__":
    seed(sys.argv[1], sys.argv[2])
    print("seeded 5 messages")
