"""A synthetic corpus of data subjects with personal details (Faker, seeded).

Each subject is a customer of a fictional service; each of their records is a support
message that contains personal details (name, email, phone, account or patient number) and a
``label`` — the department the message is routed to — that is learnable from the wording.
The same seed gives the same corpus on every run and machine (for a given Faker release).
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass

from faker import Faker

from privaudit.mechanisms.data.records import Record

_FIRST_DAY, _LAST_DAY = datetime.date(2023, 1, 1), datetime.date(2024, 12, 31)

LABELS: tuple[str, ...] = ("billing", "technical", "account", "medical")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "Hi, this is {name}. I was charged {amount} twice on my card ending {card} for "
        "account {account}. Please refund the duplicate payment. Reach me at {email}.",
        "Invoice {invoice} for account {account} shows {amount}, but my plan costs less. "
        "Can someone correct the bill? {name}, {phone}",
        "{name} here: my direct debit of {amount} failed on {date}. Which bank details do "
        "you have for account {account}? Email {email}.",
        "Please send a VAT receipt for the {amount} payment made on {date} to {email}. "
        "Customer {name}, account {account}.",
    ),
    "technical": (
        "The app crashes every time I open settings on my {device}. Account {account}, "
        "{name}. You can call me on {phone}.",
        "Since {date} my router shows a red light and the connection drops. {name}, "
        "{address}, phone {phone}.",
        "Error code {code} appears when I sync files from my {device}. Please help. "
        "{name} ({email})",
        "My {device} will not pair with the hub after the update on {date}. Account "
        "{account}; contact {email}.",
    ),
    "account": (
        "I cannot log in: the reset email never reaches {email}. My name is {name}, "
        "account {account}.",
        "Please change the address on account {account} to {address}. Thanks, {name}.",
        "{name} requesting to close account {account} and delete my profile. Confirm to "
        "{email} or {phone}.",
        "Someone changed the password of account {account} on {date}. I am {name}; call "
        "{phone} to verify my identity.",
    ),
    "medical": (
        "Patient {name}, number {patient}, needs a copy of the lab results from {date}. "
        "Send them to {email}.",
        "I would like to reschedule my appointment with Dr. {doctor} on {date}. Patient "
        "{patient}, phone {phone}.",
        "My prescription for {drug} ran out; patient {patient} ({name}) asks for a refill "
        "at the clinic near {address}.",
        "Please update the allergy record of patient {patient}: allergic to {drug}. "
        "{name}, {phone}",
    ),
}

_DEVICES = ("laptop", "phone", "tablet", "smart TV", "watch", "desktop")
_DRUGS = ("amoxicillin", "ibuprofen", "metformin", "lisinopril", "atorvastatin", "insulin")


@dataclass(frozen=True)
class _Subject:
    subject_id: str
    name: str
    email: str
    phone: str
    address: str
    account: str
    patient: str
    card: str


def _subject(fake: Faker, index: int) -> _Subject:
    name = fake.name()
    user = name.lower().replace(" ", ".").replace("'", "")
    return _Subject(
        subject_id=f"s{index:05d}",
        name=name,
        email=f"{user}@{fake.free_email_domain()}",
        phone=fake.numerify("+1-###-###-####"),
        address=fake.address().replace("\n", ", "),
        account=fake.bothify("AC-####-????").upper(),
        patient=fake.numerify("P#######"),
        card=fake.numerify("####"),
    )


def _render(template: str, subject: _Subject, fake: Faker, rng: random.Random) -> str:
    return template.format(
        name=subject.name,
        email=subject.email,
        phone=subject.phone,
        address=subject.address,
        account=subject.account,
        patient=subject.patient,
        card=subject.card,
        amount=f"${rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
        invoice=fake.numerify("INV-######"),
        # a fixed window, not relative to today: the corpus must not change with the date
        date=fake.date_between(start_date=_FIRST_DAY, end_date=_LAST_DAY).isoformat(),
        device=rng.choice(_DEVICES),
        code=fake.bothify("E-###?").upper(),
        doctor=fake.last_name(),
        drug=rng.choice(_DRUGS),
    )


def generate_corpus(
    *,
    subjects: int,
    min_records: int,
    max_records: int,
    seed: int,
    locale: str = "en_US",
    label_noise: float = 0.0,
) -> list[Record]:
    """``subjects`` people, each with ``min_records``–``max_records`` labelled messages.

    ``label_noise``: the fraction of messages labelled with the subject's usual department
    instead of the message's topic.
    """
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = random.Random(seed)
    records: list[Record] = []
    for i in range(subjects):
        subject = _subject(fake, i)
        main_label = rng.choice(LABELS)
        for j in range(rng.randint(min_records, max_records)):
            # A subject writes mostly about one topic, sometimes about another.
            topic = main_label if rng.random() < 0.7 else rng.choice(LABELS)
            template = rng.choice(_TEMPLATES[topic])
            # Some messages are routed to the subject's usual department whatever they are
            # about: learnable only by memorising the person, as real routing noise is.
            label = main_label if rng.random() < label_noise else topic
            records.append(
                Record(
                    id=f"{subject.subject_id}-r{j}",
                    subject_id=subject.subject_id,
                    text=_render(template, subject, fake, rng),
                    label=label,
                )
            )
    return records
