"""What the operator asked: the words that matter, and the time they point at.

Operators describe symptoms in their words ("VMs won't boot since 14:00"); logs use OpenStack's ("Instance failed
to spawn"). For the lexical (TF-IDF) signal the issue is expanded with the log vocabulary of the symptoms it names,
so fast mode, which has no embeddings, still connects the two. A time ("since 14:00", "at 09:30", "after
2026-11-23 09:30") becomes the point the operator saw things change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# symptom word (regex on the lower-cased issue) -> words OpenStack logs use for it
_EXPANSIONS: tuple[tuple[str, str], ...] = (
    (r"\bboot|\blaunch|\bstart|\bspawn|\bbuild|\bcreat|\bprovision", "spawn build boot launch scheduling"),
    (r"\bvms?\b|\bservers?\b|\binstances?\b|\bguests?\b", "instance server domain"),
    (r"network|connectivity|\bips?\b|dhcp|\bports?\b|\bvif|ping|unreachable|neutron", "network port vif neutron dhcp"),
    (r"volume|attach|detach|storage|cinder|\bdisk", "volume attach attachment cinder iscsi target"),
    (r"image|glance|snapshot", "image glance"),
    (r"login|log in|auth|token|401|403|unauthori[sz]ed|credential|password|keystone|permission",
     "authentication authorization token keystone identity unauthorized"),
    (r"slow|timeout|time out|timing out|hang|stuck|latency|unresponsive",
     "timeout timed waiting"),
    (r"rabbit|amqp|queue|messag|\brpc\b|broker", "amqp rabbitmq messaging broker rpc"),
    (r"database|\bdb\b|sql|mysql|mariadb|galera", "database sqlalchemy db queuepool"),
    (r"schedul|capacity|no valid host|novalidhost|placement|quota|resources?\b",
     "scheduling host allocation placement candidates"),
    (r"space|disk full|\bfull\b|storage full", "space device disk"),
    (r"\bapi\b|503|500|http|horizon|dashboard|cli", "api http status"),
)

_TIME = re.compile(
    r"(?:since|from|after|at|around|starting|began|started)\s+(?:about\s+)?"
    r"(?P<date>\d{4}-\d\d-\d\d[ T])?(?P<h>\d{1,2})(?::(?P<m>\d\d))?(?::(?P<s>\d\d))?\s*(?P<ampm>am|pm)?"
    r"(?:\s*(?P<utc>utc|z\b))?",
    re.I,
)


# Words that say something is wrong but not what: every error line matches them, so they carry no evidence that
# the logs are about *this* issue. Kept out of the lexical query together with plain English stop words.
_GENERIC = frozenset("""
a about above after again all also am an and any are around as at be been before being but by can cannot could did
do does doing down during each few for from further had has have having he her here hers him his how i if in into is
it its just me more most my no nor not now of off on once only or other our out over own same she should since so
some still such than that the their them then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your since today yesterday tonight morning
evening afternoon minutes hours hour minute pm am utc
fail fails failed failing failure failures error errors erroring broken break breaks issue issues problem problems
trouble wrong work works working doesn don won t can't cannot unable anymore again keep keeps started starting
every new stay stays return returns returned call calls time times seem seems get gets getting got please help
""".split())


@dataclass(frozen=True)
class Issue:
    text: str
    terms: str = ""  # the log words the issue's symptoms map to
    concepts: tuple[tuple[str, ...], ...] = ()  # what the issue is about: each a set of interchangeable words
    clock: tuple[int, int, int] | None = None  # hh, mm, ss named in the issue
    date: str | None = None  # yyyy-mm-dd when the issue names one

    def since(self, reference: float | None) -> float | None:
        """The named time as epoch seconds (UTC): on the named date, else on the day of ``reference`` (the logs'
        last timestamp), the latest such time not after it."""
        if self.clock is None:
            return None
        h, m, s = self.clock
        if self.date:
            day = datetime.fromisoformat(self.date).replace(tzinfo=timezone.utc)
        elif reference is not None:
            day = datetime.fromtimestamp(reference, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            return None
        t = day + timedelta(hours=h, minutes=m, seconds=s)
        if not self.date and reference is not None and t.timestamp() > reference + 60:
            t -= timedelta(days=1)  # "since 23:00" read at 01:00: yesterday
        return t.timestamp()


def parse_issue(text: str) -> Issue:
    text = " ".join(str(text).split())
    low = text.lower()
    terms: list[str] = []
    concepts: list[tuple[str, ...]] = []
    words_in_text = re.findall(r"[a-z][a-z0-9_]+", low)
    covered: set[str] = set()
    for pattern, words in _EXPANSIONS:
        if re.search(pattern, low):
            terms.extend(w for w in words.split() if w not in terms)
            concepts.append(tuple(words.split()))
            covered.update(w for w in words_in_text if re.search(pattern, w))
    for w in words_in_text:
        if w not in _GENERIC and w not in covered and len(w) > 2 and not w.isdigit() and (w,) not in concepts:
            concepts.append((w,))
    clock = date = None
    m = _TIME.search(text)
    if m and (m.group("m") or m.group("ampm") or m.group("date")):
        h = int(m.group("h"))
        if m.group("ampm"):
            h = h % 12 + (12 if m.group("ampm").lower() == "pm" else 0)
        if h < 24:
            clock = (h, int(m.group("m") or 0), int(m.group("s") or 0))
            date = m.group("date").strip() if m.group("date") else None
    return Issue(text, " ".join(terms), tuple(concepts), clock, date)
