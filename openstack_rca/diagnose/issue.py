"""What the operator asked: the operation that failed, what it acted on, the time and host they point at.

Operators describe symptoms in their words ("VMs won't boot since 14:00 on compute-2"); logs use OpenStack's
("Instance failed to spawn", ``POST /v2.1/servers``, ``_build_and_run_instance``). The issue becomes concepts,
each a set of interchangeable log words:

* actions (create, delete, attach, list, connect, …): what the operator was doing. A failure on another operation
  is another incident, so relevance needs the action to match when the issue names one;
* objects (server, volume, network, image, …) and symptoms (timeouts, the database, the broker, an HTTP status);
* leftover words the table does not know, which count half.

A time ("since 14:00", "at 09:30", "after 2026-11-23 09:30") becomes the point the operator saw things change; a
host ("on compute-2") is matched against the evidence's hosts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

ACTION, OBJECT, SYMPTOM, STATUS, WORD = "action", "object", "symptom", "status", "word"

# (kind, regex on the lower-cased issue, words OpenStack logs use for it)
_CONCEPTS: tuple[tuple[str, str, str], ...] = (
    (ACTION, r"\bcreat|\bboot|\blaunch|\bspawn|\bbuild|\bprovision|\bnew\b|\bactive\b|\bstart",
     "create spawn build boot launch scheduling provision"),
    (ACTION, r"\bdelet|\bremov(?!e volume)|\bterminat|\bdestroy|\bteardown|\bclean ?up",
     "delete deletion remove terminate destroy"),
    (ACTION, r"\battach|\badd (?:a )?volume|\bmount\b|\bplug\b",
     "attach attachment reserve initialize_connection connect_volume"),
    (ACTION, r"\bdetach|\bunmount|\bunplug|remove (?:a )?volume", "detach detachment terminate_connection"),
    (ACTION, r"\blist\b|\bshow\b|\bget\b|\bdescribe|\bquery|\bsearch|\bdisplay", "list show get index detail"),
    (ACTION, r"\bssh\b|\bping\b|connectivit|\breach|unreachabl|\bconnect to\b",
     "connectivity unreachable floatingip router dhcp metadata"),
    (ACTION, r"\bresiz|\bmigrat|\bevacuat", "resize migrate migration evacuate"),
    (ACTION, r"\breboot|\brebuild|\bshelv|\brescue|\bsuspend|\bresume\b", "reboot rebuild shelve rescue suspend"),
    (ACTION, r"\bsnapshot|\bbackup", "snapshot backup"),
    (OBJECT, r"\bvms?\b|\bservers?\b|\binstances?\b|\bguests?\b", "instance server domain guest"),
    (OBJECT, r"volume|\bdisks?\b|storage|cinder|\blvm\b|iscsi|\bceph\b|\brbd\b", "volume cinder iscsi target lvm"),
    (OBJECT, r"network|connectivity|\bips?\b|dhcp|\bports?\b|\bvifs?\b|\bping\b|unreachable|neutron|subnet|router"
             r"|floating|\bssh\b", "network port vif neutron dhcp subnet router floatingip"),
    (OBJECT, r"image|glance|snapshot", "image glance"),
    (SYMPTOM, r"login|log in|auth|token|\b401\b|\b403\b|unauthori[sz]ed|credential|password|keystone|permission",
     "authentication authorization token keystone identity unauthorized"),
    (SYMPTOM, r"slow|timeout|time out|timing out|hang|stuck|latency|unresponsive", "timeout timed waiting"),
    (SYMPTOM, r"rabbit|amqp|queue|messag|\brpc\b|broker", "amqp rabbitmq messaging broker rpc"),
    (SYMPTOM, r"database|\bdb\b|sql|mysql|mariadb|galera", "database sqlalchemy db queuepool"),
    (SYMPTOM, r"schedul|capacity|no valid host|novalidhost|placement|quota|resources?\b",
     "scheduling host allocation placement candidates"),
    (SYMPTOM, r"space|disk full|\bfull\b|storage full", "space device disk"),
    (SYMPTOM, r"\bapi\b|\b[45]\d\d\b|http|horizon|dashboard|\bcli\b", "api http status"),
)

_STATUS = re.compile(r"\b(?:http|status|error|code)?\s*\(?\b(?P<code>[45]\d\d)\b")
_HOST = re.compile(r"\b(?:on|at|from|in)\s+(?:host|node|hypervisor|server)?\s*(?P<host>[a-z][\w-]*\d[\w.-]*)",
                   re.I)

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
never becomes become became does openstack it's isn add
everything anything something nothing everyone anyone touch touches touching second seconds then
project projects tenant tenants user users customer customers region production ticket investigate investigation
side changed change retries retry report reports reported seemingly seems
""".split())


@dataclass(frozen=True)
class Issue:
    text: str
    terms: str = ""  # the log words the issue's concepts map to
    concepts: tuple[tuple[str, ...], ...] = ()  # each a set of interchangeable log words
    kinds: tuple[str, ...] = ()  # per concept: action, object, symptom, status or word
    clock: tuple[int, int, int] | None = None  # hh, mm, ss named in the issue
    date: str | None = None  # yyyy-mm-dd when the issue names one
    hosts: tuple[str, ...] = field(default=())  # hosts the issue names ("on compute-2")

    @property
    def has_action(self) -> bool:
        return ACTION in self.kinds

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
    clock = date = None
    m = _TIME.search(text)
    if m and (m.group("m") or m.group("ampm") or m.group("date")):
        h = int(m.group("h"))
        if m.group("ampm"):
            h = h % 12 + (12 if m.group("ampm").lower() == "pm" else 0)
        if h < 24:
            clock = (h, int(m.group("m") or 0), int(m.group("s") or 0))
            date = m.group("date").strip() if m.group("date") else None
    timeless = _TIME.sub(" ", low) if clock else low  # "since 14:00" is not an HTTP status or a host

    terms: list[str] = []
    concepts: list[tuple[str, ...]] = []
    kinds: list[str] = []
    words_in_text = re.findall(r"[a-z][a-z0-9_]+", timeless)
    covered: set[str] = set()
    for kind, pattern, words in _CONCEPTS:
        if re.search(pattern, timeless):
            terms.extend(w for w in words.split() if w not in terms)
            concepts.append(tuple(words.split()))
            kinds.append(kind)
            covered.update(w for w in words_in_text if re.search(pattern, w))
    for code in dict.fromkeys(mm.group("code") for mm in _STATUS.finditer(timeless)):
        concepts.append((code,))
        kinds.append(STATUS)
    hosts = tuple(dict.fromkeys(hm.group("host").lower() for hm in _HOST.finditer(timeless)
                                if not re.fullmatch(r"\d+(:\d+)*", hm.group("host"))))
    for w in words_in_text:
        if (w not in _GENERIC and w not in covered and len(w) > 2 and not w.isdigit() and (w,) not in concepts
                and w not in hosts):
            concepts.append((w,))
            kinds.append(WORD)
    return Issue(text, " ".join(terms), tuple(concepts), tuple(kinds), clock, date, hosts)
