"""An account's item collection with a time-ordered member: the profile, its notes and its
payments (sort key ``PAYMENT#{paid_at}#{payment_id}``) share ``ACCOUNT#{account_id}``, and
logins, which no collection reads, live there too."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from asyncdyn.model import Design, Entity

journal = Design("Journal", type_attribute="Type")


@journal.entity("Profile")
class Profile(Entity):
    account_id: str
    name: str
    key = journal.key(pk="ACCOUNT#{account_id}", sk="PROFILE")


@journal.entity("Payment")
class Payment(Entity):
    account_id: str
    paid_at: datetime
    payment_id: str
    amount: Decimal
    key = journal.key(pk="ACCOUNT#{account_id}", sk="PAYMENT#{paid_at}#{payment_id}")


@journal.entity("Note")
class Note(Entity):
    account_id: str
    note_id: str
    text: str
    key = journal.key(pk="ACCOUNT#{account_id}", sk="NOTE#{note_id}")


@journal.entity("Login")
class Login(Entity):
    account_id: str
    at: datetime
    key = journal.key(pk="ACCOUNT#{account_id}", sk="LOGIN#{at}")


# Every type under the account but logins: read as ranges, never a type filter.
account_page = journal.collection("account_page", Profile, Payment, Note)
