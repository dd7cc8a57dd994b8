"""Schemathesis hooks for fakemail's REST API, loaded by `.ci/schemathesis/run`.

- With `FAKEMAIL_PASS=user`, every request carries a user's session token. schemathesis
  calls logout, changes the password and deletes the account, so a token does not last:
  on a 401 it asks for a new one, and each new token is a new account's (an account whose
  password checks failed is locked out of logging in for a while).
- A wait (`.../wait`) answers when a message arrives or its `timeout` passes (30 seconds
  when absent or empty): a request that would wait longer than a moment gets `timeout=0`
  instead. Only values the document allows are replaced, so refused ones are still tried.
- With `FAKEMAIL_PASS=admin`, the store keeps the messages seed.py stored: when a request
  that deletes messages has left none, the next request finds them seeded again (and the
  listing's links real ids to follow). Every other case of an operation on one message
  (`/api/v1/admin/messages/{id}...`) generated to fit the document gets the id of a stored
  message instead of a made-up one, which would only ever answer 404: the newest, which has
  an attachment.
- `filter_failure` drops the findings that are the API working as documented, those only:
  - a password refused as one of the most common ones (a list of 232, in any letter case) or
    as the account's own address: rules over a list and over another field, which the
    document states in words but no schema can;
  - a `q` refused as `invalid_search`: a query of the search grammar, which the document
    describes in words (keys, `"phrases"`, sizes, dates); a pattern for the whole grammar,
    dates with their month lengths included, would be longer than the parser;
  - "deleted resource still available" after `DELETE .../messages`, which empties a mailbox
    (the mailbox stays), or after `DELETE /api/v1/messages/{id}` without `permanent=true`,
    which moves the copy to `trash`, where it can still be read, and from where a `PATCH`
    may move it to another mailbox.
"""

import itertools
import os
import re
import secrets
import sys

import requests
import schemathesis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed import seed  # noqa: E402

URL = os.environ["FAKEMAIL_URL"]

# Seconds per unit of the wait's `timeout`, as the server reads it (humantime).
UNITS = {
    "": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "ms": 1e-3, "msec": 1e-3, "millis": 1e-3,
    "us": 1e-6, "usec": 1e-6,
    "ns": 1e-9, "nsec": 1e-9, "nanos": 1e-9,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
}
PART = r"([0-9]+(?:\.[0-9]+)?) ?([a-z]*)"
TIMEOUT = re.compile(f"{PART}(?: ?{PART})?")


def waits(value):
    """How long a wait with this `timeout` would wait, if it is one the document allows (a
    duration of one part, or minutes then seconds)."""
    if value == "":
        return 30
    if not TIMEOUT.fullmatch(value):
        return None
    parts = re.findall(PART, value)
    if any(unit not in UNITS for _, unit in parts):
        return None
    return sum(float(n) * UNITS[unit] for n, unit in parts)


# The requests that delete messages, which may leave the operator's operations none to find.
DELETES = re.compile(r"DELETE /api/v1/admin/messages.*|POST /api/v1/admin/purge")


@schemathesis.hook
def after_call(ctx, case, response):
    if os.environ.get("FAKEMAIL_PASS") != "admin" or response.status_code >= 300:
        return
    if not DELETES.fullmatch(f"{case.method} {case.operation.path}"):
        return
    page = admin_get("/api/v1/admin/messages", limit=1)
    if page is not None and not page["messages"]:
        seed(URL, os.environ["FAKEMAIL_SMTP"])


ONE_MESSAGE = "/api/v1/admin/messages/{id}"
cases_on_one_message = itertools.count()


def admin_get(path, **params):
    r = requests.get(
        f"{URL}{path}",
        params=params,
        headers={"Authorization": f"Bearer {os.environ['FAKEMAIL_ADMIN_TOKEN']}"},
        timeout=10,
    )
    return r.json() if r.status_code == 200 else None


def stored_id(case):
    """The id of the newest stored message, for every other case that fits the document."""
    meta = getattr(case, "_meta", None)
    if meta is None or meta.generation.mode != "positive":
        return None
    if next(cases_on_one_message) % 2:
        return None
    page = admin_get("/api/v1/admin/messages", limit=1)
    if page is not None and not page["messages"]:
        seed(URL, os.environ["FAKEMAIL_SMTP"])
        page = admin_get("/api/v1/admin/messages", limit=1)
    return page["messages"][0]["id"] if page and page["messages"] else None


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if os.environ.get("FAKEMAIL_PASS") == "admin" and case.operation.path.startswith(ONE_MESSAGE):
        found = stored_id(case)
        if found is not None:
            case.path_parameters = {**(case.path_parameters or {}), "id": found}
    if not case.operation.path.endswith("/wait"):
        return
    query = dict(case.query or {})
    value = query.get("timeout", "")
    seconds = waits(value) if isinstance(value, str) else None
    if seconds is not None and seconds > 0.1:
        query["timeout"] = "0"
        case.query = query


EMPTIED = re.compile(r"DELETE /api/v1/mailboxes/[^/]+/messages")
COPY = re.compile(r"DELETE /api/v1/messages/([^/]+)")


# The messages of the password rules the schema cannot say.
UNSAYABLE_PASSWORD_RULES = ("most commonly used", "must not be the email address")


def error(response):
    """The `error` of an answer's JSON body, or an empty one."""
    try:
        return response.json().get("error") or {}
    except ValueError:
        return {}


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """False for the findings above, to drop them; True keeps every other failure."""
    if failure.code == "ST202":
        e = error(response)
        if e.get("code") == "invalid_search" and e.get("field") == "q":
            return False
        return not (
            e.get("code") == "weak_password"
            and any(rule in e.get("message", "") for rule in UNSAYABLE_PASSWORD_RULES)
        )
    if failure.code != "ST301":
        return True
    if EMPTIED.fullmatch(failure.free):
        return False
    copy = COPY.fullmatch(failure.free)
    if copy and case.method == "PATCH" and response.status_code == 200:
        # A PATCH that moved the copy out of trash, where the DELETE put it: it is now where
        # the PATCH said.
        wanted = case.body.get("mailbox") if isinstance(case.body, dict) else None
        now = response.json().get("mailbox")
        if isinstance(wanted, str) and isinstance(now, str) and now.lower() == wanted.strip().lower():
            return False
    if copy:
        # Where is the copy now? In trash, it was moved there, as documented.
        r = requests.get(
            f"{URL}/api/v1/messages/{copy.group(1)}",
            headers={"Authorization": (case.headers or {}).get("Authorization", "")},
            timeout=10,
        )
        return not (r.status_code == 200 and r.json().get("mailbox") == "trash")
    return True


if os.environ.get("FAKEMAIL_PASS") == "user":

    @schemathesis.auth()
    class NewAccount:
        """The session token of a new account."""

        def get(self, case, ctx):
            account = {
                "email": f"schemathesis-{secrets.token_hex(6)}@example.test",
                "password": secrets.token_urlsafe(18),
            }
            r = requests.post(f"{URL}/api/v1/auth/register", json=account, timeout=10)
            r.raise_for_status()
            r = requests.post(f"{URL}/api/v1/auth/login", json=account, timeout=10)
            r.raise_for_status()
            return r.json()["token"]

        def set(self, case, token, ctx):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
