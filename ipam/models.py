"""The ledger's tables. Names follow DESIGN.md's domain words.

Addresses are stored as (family, first, last, prefixlen), first/last as
16-byte big-endian strings (see addresses.py). Intervals are [valid_from,
valid_to) with valid_to NULL while current; rows that carry history are
never deleted.
"""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .addresses import Block
from .db import Base, StateType, UTCDateTime, utcnow


# States of the newer records. Stored as VARCHAR(16) with the tables' CHECK constraints
# (ipam.db.StateType); compared as the enum members (a StrEnum equals its value).
class RunTrigger(enum.StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class FindingStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class CaseState(enum.StrEnum):
    OPEN = "open"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class CustomerAnswer(enum.StrEnum):
    """The customer's own status on a case (its portal), apart from the desk's state."""

    NONE = "none"
    ACKNOWLEDGED = "acknowledged"
    ANSWERED = "answered"
    DISPUTED = "disputed"


class Holding(enum.StrEnum):
    """What the reported address was at the event's time."""

    HELD = "held"
    UNALLOCATED = "unallocated"
    QUARANTINED = "quarantined"


class RejectedStatus(enum.StrEnum):
    REJECTED = "rejected"
    ACCEPTED = "accepted"


class SanctionStatus(enum.StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class IncidentState(enum.StrEnum):
    OPEN = "open"
    REPORTED = "reported"
    CLOSED = "closed"


def _enum(cls, name):
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        length=32,
    )


class CustomerKind(enum.StrEnum):
    ISP = "isp"  # resells access: needs an ISP licence (clause 1)
    HOSTING = "hosting"  # hosts third-party sites
    ENTERPRISE = "enterprise"  # own use


class CustomerStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXITED = "exited"


class SublesseeKind(enum.StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


class IdType(enum.StrEnum):
    RESIDENT_ID = "resident_id"  # 18-digit PRC resident identity card, GB 11643
    USCC = "uscc"  # unified social credit code, GB 32100
    PASSPORT = "passport"
    OTHER = "other"


class EndReason(enum.StrEnum):
    ENDED = "ended"  # ended normally by an engineer
    EXIT = "exit"  # the customer exited (clause 19: rights end automatically)
    RECLAIMED = "reclaimed"  # reclaimed for a violation or false information
    ALLOCATION_ENDED = "allocation_ended"  # a sublease ended with its allocation


class AddressMixin:
    """Columns of a CIDR block in storage form, with its checks."""

    family: Mapped[int] = mapped_column(SmallInteger)
    first: Mapped[bytes] = mapped_column(LargeBinary(16))
    last: Mapped[bytes] = mapped_column(LargeBinary(16))
    prefixlen: Mapped[int] = mapped_column(SmallInteger)

    @property
    def block(self) -> Block:
        return Block.of(self.family, self.first, self.prefixlen)

    @property
    def prefix(self) -> str:
        return str(self.block)


def _address_checks():
    return (
        CheckConstraint("family IN (4, 6)", name="family"),
        CheckConstraint(
            "prefixlen >= 0 AND ((family = 4 AND prefixlen <= 32) OR prefixlen <= 128)",
            name="prefixlen",
        ),
        CheckConstraint("last >= first", name="range"),
    )


class Pool(AddressMixin, Base):
    """A block of the provider's own space; pools nest, allocations come from them."""

    __tablename__ = "pool"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("pool.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    # The data centre the pool's space is routed in (None: its parent's, else the default).
    data_centre_id: Mapped[int | None] = mapped_column(ForeignKey("data_centre.id"))

    parent: Mapped[Pool | None] = relationship(remote_side=[id])
    data_centre: Mapped[DataCentre | None] = relationship()

    __table_args__ = (
        *_address_checks(),
        UniqueConstraint("family", "first", "prefixlen", name="uq_pool_block"),
        Index("ix_pool_family_first", "family", "first"),
    )


class FreeBlock(AddressMixin, Base):
    """Free space of a pool as its maximal CIDR blocks (buddy form).

    Derived state kept in step with allocations so next-free is an indexed
    lookup, not a scan; rebuildable from the ledger (freespace.rebuild).
    """

    __tablename__ = "free_block"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pool.id"))

    __table_args__ = (
        *_address_checks(),
        UniqueConstraint("pool_id", "first", name="uq_free_block_pool_first"),
        Index("ix_free_block_pool_plen_first", "pool_id", "prefixlen", "first"),
    )


class MapTally(Base):
    """Current IPv4 holdings counted per aligned /16, /20 and /24 (level), in addresses.

    Kept by database triggers on allocation, sublease and quarantine (migration 0013)
    for rows that fit in one cell of the level; larger rows are listed in MapBig. The
    address map of a large prefix reads these instead of every holding inside it.
    """

    __tablename__ = "map_tally"
    family: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # first address >> (32 - level)
    allocated: Mapped[int] = mapped_column(BigInteger, server_default="0")
    subleased: Mapped[int] = mapped_column(BigInteger, server_default="0")
    quarantined: Mapped[int] = mapped_column(BigInteger, server_default="0")


class MapBig(Base):
    """Current IPv4 holdings larger than a /24 (few): the map adds them as they are."""

    __tablename__ = "map_big"
    kind: Mapped[str] = mapped_column(
        String(16), primary_key=True
    )  # allocated|subleased|quarantined
    src_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[int] = mapped_column(SmallInteger)
    first: Mapped[bytes] = mapped_column(LargeBinary(16))
    last: Mapped[bytes] = mapped_column(LargeBinary(16))


class FreeTally(Base):
    """How many free blocks of each length a pool has: its free size without a scan.

    Kept by database triggers on free_block (migration 0009), so every path that
    changes free space (allocation, end, bulk import, rebuild, a bulk load)
    keeps it exact; nothing in Python writes it.
    """

    __tablename__ = "free_tally"
    pool_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefixlen: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    family: Mapped[int] = mapped_column(SmallInteger)
    n: Mapped[int] = mapped_column(Integer)


class Customer(Base):
    """Party A of the agreement."""

    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    kind: Mapped[CustomerKind] = mapped_column(_enum(CustomerKind, "customer_kind"))
    status: Mapped[CustomerStatus] = mapped_column(
        _enum(CustomerStatus, "customer_status"), default=CustomerStatus.ACTIVE
    )
    isp_licence_number: Mapped[str | None] = mapped_column(String(64))
    isp_licence_scope: Mapped[str | None] = mapped_column(Text)
    isp_licence_expires: Mapped[date | None] = mapped_column(Date)
    icp_number: Mapped[str | None] = mapped_column(String(64))
    connected_on: Mapped[date | None] = mapped_column(Date)
    psb_filing_number: Mapped[str | None] = mapped_column(String(64))
    psb_filed_on: Mapped[date | None] = mapped_column(Date)
    responsible_persons: Mapped[list] = mapped_column(JSON, default=list)
    contacts: Mapped[list] = mapped_column(JSON, default=list)
    # Domains the customer's own services use (reverse-DNS names are checked against them).
    domains: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)


class CustomerRevision(Base):
    """The customer's data as it was from recorded_at on; attribution reads these."""

    __tablename__ = "customer_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    snapshot: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_customer_revision_at", "customer_id", "recorded_at"),)


class Sublessee(Base):
    """A third party a customer passes addresses to (clause 19)."""

    __tablename__ = "sublessee"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    kind: Mapped[SublesseeKind] = mapped_column(_enum(SublesseeKind, "sublessee_kind"))
    name: Mapped[str] = mapped_column(String(200))
    id_type: Mapped[IdType] = mapped_column(_enum(IdType, "id_type"))
    id_number: Mapped[str] = mapped_column(String(64))
    contact_person: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    domains: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()

    __table_args__ = (
        UniqueConstraint("customer_id", "id_type", "id_number", name="uq_sublessee_identity"),
    )


class SublesseeRevision(Base):
    __tablename__ = "sublessee_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sublessee_id: Mapped[int] = mapped_column(ForeignKey("sublessee.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    snapshot: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_sublessee_revision_at", "sublessee_id", "recorded_at"),)


class IntervalMixin:
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[EndReason | None] = mapped_column(_enum(EndReason, "end_reason"))
    end_note: Mapped[str | None] = mapped_column(Text)

    def is_current(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or self.valid_to > at)


class ImportStatus(enum.StrEnum):
    WRITING = "writing"  # chunks are being committed (or the import was interrupted)
    DONE = "done"
    UNDONE = "undone"  # withdrawn whole: a chunk failed, or an operator undid it


class ImportBatch(Base):
    """One bulk import, written in short chunks: its rows carry its id until it is done.

    Why: an import must not hold the pools' locks for its whole run, so it
    commits chunk by chunk; all-or-nothing is kept by withdrawing a batch
    whose writing did not finish (ipam/importing.py).
    """

    __tablename__ = "import_batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    written: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[ImportStatus] = mapped_column(StateType(ImportStatus))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("status IN ('writing', 'done', 'undone')", name="status"),
        Index("ix_import_batch_status", "status"),
    )


class Allocation(AddressMixin, IntervalMixin, Base):
    """A block a customer holds for [valid_from, valid_to); never deleted (except the rows
    of an import withdrawn whole before it was done, see ImportBatch)."""

    __tablename__ = "allocation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pool.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    purpose: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The import that wrote it (until the import is done, its withdrawal finds it by this).
    # An index, not a foreign key: a foreign key costs a check per row of a bulk import,
    # and only ipam/bulk.py sets it, to a batch it has just written.
    import_batch_id: Mapped[int | None] = mapped_column(Integer, index=True)

    pool: Mapped[Pool] = relationship()
    customer: Mapped[Customer] = relationship()

    __table_args__ = (
        *_address_checks(),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="interval"),
        Index("ix_allocation_family_first", "family", "first"),
        Index("ix_allocation_customer_valid_to", "customer_id", "valid_to"),
        Index("ix_allocation_pool_valid_to", "pool_id", "valid_to"),
    )


class HoldingLength(Base):
    """Every (family, prefix length) any allocation has ever had; append-only.

    Attribution only needs to look for covering blocks of these lengths: one
    index probe per length in use instead of one per possible length.
    """

    __tablename__ = "holding_length"
    family: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    prefixlen: Mapped[int] = mapped_column(SmallInteger, primary_key=True)


class Sublease(AddressMixin, IntervalMixin, Base):
    """Part of one allocation passed to a sublessee; inside it in space and time."""

    __tablename__ = "sublease"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocation.id"))
    sublessee_id: Mapped[int] = mapped_column(ForeignKey("sublessee.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    allocation: Mapped[Allocation] = relationship()
    sublessee: Mapped[Sublessee] = relationship()

    __table_args__ = (
        *_address_checks(),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="interval"),
        Index("ix_sublease_allocation_first", "allocation_id", "first"),
        Index("ix_sublease_family_first", "family", "first"),
    )


class Quarantine(AddressMixin, Base):
    """Reclaimed addresses cooling down before they can be allocated again."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pool.id"))
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("allocation.id"))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    pool: Mapped[Pool] = relationship()

    __table_args__ = (
        *_address_checks(),
        CheckConstraint("until >= since", name="interval"),
        Index("ix_quarantine_family_first", "family", "first"),
        Index("ix_quarantine_pool_released", "pool_id", "released_at"),
    )


class AuditLog(Base):
    """Append-only, hash-chained record of every change (audit.py)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)


class AuditHead(Base):
    """One row: the chain's length and last hash. Updating it serialises appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class Role(enum.StrEnum):
    ADMIN = "admin"
    ENGINEER = "engineer"
    CUSTOMER = "customer"
    AUDITOR = "auditor"


class User(Base):
    """A person who logs in; a customer user is bound to exactly one customer."""

    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    language: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every login session's id: a new one (ipam.users.end_sessions) on logout,
    # password change and disable kills every older session cookie.
    session_key: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))

    customer: Mapped[Customer | None] = relationship()

    # The attributes a login session expects of a user (duck-typed: no Flask here).
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_key}"

    __table_args__ = (
        CheckConstraint(
            "(role = 'customer') = (customer_id IS NOT NULL)", name="customer_role_bound"
        ),
    )


class ApiToken(Base):
    """A bearer token for scripts; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ChangeStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ChangeRequest(Base):
    """Clause 18: a customer's request to change usage or filing data, decided by an engineer."""

    __tablename__ = "change_request"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    target: Mapped[str] = mapped_column(String(32))  # customer | allocation | site
    target_id: Mapped[int] = mapped_column(Integer)
    changes: Mapped[dict] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[ChangeStatus] = mapped_column(
        _enum(ChangeStatus, "change_status"), default=ChangeStatus.PENDING
    )
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer] = relationship()

    __table_args__ = (
        CheckConstraint("target IN ('customer', 'allocation', 'site')", name="target_kind"),
        Index("ix_change_request_status", "status"),
    )


class ProbeSchedule(Base):
    """Clause 19: when and how the addresses of one pool or one customer are probed."""

    __tablename__ = "probe_schedule"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pool.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    cron: Mapped[str] = mapped_column(String(100))
    methods: Mapped[list] = mapped_column(JSON, default=list)  # icmp, tcp, dns, blocklist
    tcp_ports: Mapped[list] = mapped_column(JSON, default=list)
    dark_after: Mapped[int] = mapped_column(Integer, default=3)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Where its runs are probed from (None: its pool's data centre, else the default).
    data_centre_id: Mapped[int | None] = mapped_column(ForeignKey("data_centre.id"))

    pool: Mapped[Pool | None] = relationship()
    customer: Mapped[Customer | None] = relationship()
    data_centre: Mapped[DataCentre | None] = relationship()

    __table_args__ = (
        CheckConstraint("(pool_id IS NULL) != (customer_id IS NULL)", name="one_target"),
        CheckConstraint("dark_after >= 1", name="dark_after"),
    )


class ProbeRun(Base):
    """One run of a schedule (by its timer or "run now"); every run leaves this row."""

    __tablename__ = "probe_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("probe_schedule.id"), index=True)
    trigger: Mapped[RunTrigger] = mapped_column(StateType(RunTrigger))
    status: Mapped[RunStatus] = mapped_column(StateType(RunStatus))
    requested_by: Mapped[str] = mapped_column(String(200))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    targets: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    findings_raised: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    phrase: Mapped[dict | None] = mapped_column(JSON)  # the error's words and values
    stats: Mapped[dict] = mapped_column(JSON, default=dict)
    # With a broker (ipam/jobs/broker.py): the data centre whose workers take the run, the
    # worker that claimed it and the claim's token (a recorder must still hold it), and when
    # it was last handed to the broker (the scheduler hands it again if it is lost).
    site: Mapped[str] = mapped_column(String(64), default="default")
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim: Mapped[str | None] = mapped_column(String(64))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    schedule: Mapped[ProbeSchedule] = relationship()

    __table_args__ = (
        CheckConstraint("trigger IN ('schedule', 'manual')", name="trigger"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        Index("ix_probe_run_status", "status"),
    )


class ProbeObservation(Base):
    """A raw probe result. Kept for answered addresses and for held space (dark checks)."""

    __tablename__ = "probe_observation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("probe_run.id"))
    family: Mapped[int] = mapped_column(SmallInteger)
    address: Mapped[bytes] = mapped_column(LargeBinary(16))
    method: Mapped[str] = mapped_column(String(32))  # icmp | tcp:<port> | ptr | dnsbl:<zone>
    answered: Mapped[bool] = mapped_column()
    rtt_ms: Mapped[float | None] = mapped_column()
    detail: Mapped[str] = mapped_column(Text, default="")
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_probe_observation_run_address", "run_id", "family", "address"),
        Index("ix_probe_observation_address", "family", "address", "observed_at"),
    )


class FindingKind(enum.StrEnum):
    UNALLOCATED_IN_USE = "unallocated_in_use"
    QUARANTINED_IN_USE = "quarantined_in_use"
    RECLAIMED_IN_USE = "reclaimed_in_use"
    ALLOCATED_DARK = "allocated_dark"
    PTR_UNREGISTERED = "ptr_unregistered"
    PTR_MISMATCH = "ptr_mismatch"
    BLOCKLISTED = "blocklisted"
    # Raised by the sites register (ipam/sites.py), not by probes: clauses 2, 3 and 4.
    SITE_NO_ICP = "site_no_icp"
    SITE_NO_APPROVAL = "site_no_approval"
    SITE_INTERACTIVE_SHARED = "site_interactive_shared"


class Finding(AddressMixin, Base):
    """A rule that failed on observations; repeats update it (first/last seen, count)."""

    __tablename__ = "finding"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[FindingKind] = mapped_column(_enum(FindingKind, "finding_kind"))
    # Set while open, NULL once resolved: one open finding per kind, block and holder.
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pool.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    sublessee_id: Mapped[int | None] = mapped_column(ForeignKey("sublessee.id"))
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("allocation.id"))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("probe_schedule.id"))
    summary: Mapped[str] = mapped_column(Text)
    phrase: Mapped[dict | None] = mapped_column(JSON)  # the summary's words and values
    evidence: Mapped[list] = mapped_column(JSON, default=list)  # the latest observations
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[FindingStatus] = mapped_column(
        StateType(FindingStatus), default=FindingStatus.OPEN
    )
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer | None] = relationship()
    pool: Mapped[Pool | None] = relationship()
    sublessee: Mapped[Sublessee | None] = relationship()

    __table_args__ = (
        *_address_checks(),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        CheckConstraint("(status = 'open') = (open_key IS NOT NULL)", name="open_key"),
        CheckConstraint("count >= 1", name="count"),
        Index("ix_finding_status_kind", "status", "kind"),
        Index("ix_finding_family_first", "family", "first"),
    )


class SchedulerLease(Base):
    """Which scheduler process may fire jobs; the holder renews it, a standby waits it out."""

    __tablename__ = "scheduler_lease"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SchedulerJob(Base):
    """APScheduler 3's job table (SQLAlchemyJobStore), created here so migrations own the schema."""

    __tablename__ = "apscheduler_jobs"
    id: Mapped[str] = mapped_column(String(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


class DataCentre(Base):
    """A site: a data centre whose space is probed only from inside it, by its own workers.

    Without any row every pool is in the implicit site "default" (the embedded product).
    """

    __tablename__ = "data_centre"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProbeWorker(Base):
    """A probe worker (`ipam worker --site NAME`) and its heartbeat: live while recent."""

    __tablename__ = "probe_worker"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runs: Mapped[int] = mapped_column(Integer, default=0)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"  # accepted, waiting for a worker (or the in-process runner)
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobRun(Base):
    """One run of a scheduled job (ipam/jobs): when, by whom, what it did or why it failed."""

    __tablename__ = "job_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_by: Mapped[str] = mapped_column(String(200))
    summary: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # A queued job (heavy work handed off: a complaint batch, a report): its arguments,
    # its input (cleared once done), the error's words and values.
    args: Mapped[dict | None] = mapped_column(JSON)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    phrase: Mapped[dict | None] = mapped_column(JSON)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last handed to a broker


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENDING = "sending"  # claimed by a sender; never picked up twice
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt


class OutboxMessage(Base):
    """A mail decided inside a transaction, sent by the outbox job only after it committed."""

    __tablename__ = "outbox_message"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recipients: Mapped[list] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(500))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class AbuseCategory(enum.StrEnum):
    """Clauses 7-14 of the agreement, plus "other"."""

    ILLEGAL_CONTENT = "illegal_content"  # 7
    STATE_SECRETS = "state_secrets"  # 8
    PUBLIC_ORDER = "public_order"  # 9 (public order, obscene content)
    ATTACK = "attack"  # 10
    SPAM = "spam"  # 11
    INFRINGEMENT = "infringement"  # 12
    MALWARE = "malware"  # 13
    UNAPPROVED_CONTENT = "unapproved_content"  # 14
    OTHER = "other"


class AbuseReport(AddressMixin, Base):
    """One complaint about an address or prefix at an instant, with its original bytes."""

    __tablename__ = "abuse_report"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16))  # arf | xarf | csv | drop | form | probe
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    category: Mapped[AbuseCategory] = mapped_column(_enum(AbuseCategory, "abuse_category"))
    reporter: Mapped[str] = mapped_column(String(320), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # the parsed fields
    # Who held it at event_at: "held" (see the cases), "unallocated" or "quarantined".
    holding: Mapped[Holding] = mapped_column(StateType(Holding))

    __table_args__ = (
        *_address_checks(),
        CheckConstraint("holding IN ('held', 'unallocated', 'quarantined')", name="holding"),
        Index("ix_abuse_report_family_first", "family", "first"),
        Index("ix_abuse_report_event_at", "event_at"),
    )


class AbuseCase(AddressMixin, Base):
    """Reports about one holder, category and address, grouped within a window."""

    __tablename__ = "abuse_case"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    sublessee_id: Mapped[int | None] = mapped_column(ForeignKey("sublessee.id"))
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocation.id"))
    category: Mapped[AbuseCategory] = mapped_column(_enum(AbuseCategory, "abuse_category"))
    state: Mapped[CaseState] = mapped_column(StateType(CaseState), default=CaseState.OPEN)
    customer_status: Mapped[CustomerAnswer] = mapped_column(
        StateType(CustomerAnswer), default=CustomerAnswer.NONE
    )
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(200))  # the staff user working it

    customer: Mapped[Customer] = relationship()
    sublessee: Mapped[Sublessee | None] = relationship()

    __table_args__ = (
        *_address_checks(),
        CheckConstraint(
            "state IN ('open', 'notified', 'acknowledged', 'resolved', 'escalated')", name="state"
        ),
        Index("ix_abuse_case_grouping", "customer_id", "category", "family", "first", "state"),
        Index("ix_abuse_case_family_first", "family", "first"),
    )


class AbuseReportCase(Base):
    """Which cases a report belongs to (a report on a prefix reaches every holder inside)."""

    __tablename__ = "abuse_report_case"
    report_id: Mapped[int] = mapped_column(ForeignKey("abuse_report.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("abuse_case.id"), primary_key=True, index=True)


class RejectedReport(Base):
    """Input that could not be taken, kept byte for byte for an engineer to inspect and re-run."""

    __tablename__ = "rejected_report"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    phrase: Mapped[dict | None] = mapped_column(JSON)  # the reason's words and values
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[RejectedStatus] = mapped_column(
        StateType(RejectedStatus), default=RejectedStatus.REJECTED
    )
    report_id: Mapped[int | None] = mapped_column(ForeignKey("abuse_report.id"))

    __table_args__ = (CheckConstraint("status IN ('rejected', 'accepted')", name="status"),)


class AbuseCaseEvent(Base):
    """A case's history: every transition and answer, with who and why."""

    __tablename__ = "abuse_case_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("abuse_case.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[CaseState | None] = mapped_column(StateType(CaseState))
    to_state: Mapped[CaseState | None] = mapped_column(StateType(CaseState))
    comment: Mapped[str] = mapped_column(Text, default="")
    # A comment the system wrote: its words and values, to be shown in the reader's language.
    phrase: Mapped[dict | None] = mapped_column(JSON)


class SanctionKind(enum.StrEnum):
    WARNING = "warning"
    SUSPENSION = "suspension"
    RECLAMATION = "reclamation"
    TERMINATION = "termination"


class Sanction(Base):
    """A step of the escalation ladder against a customer, with its reason and evidence."""

    __tablename__ = "sanction"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("abuse_case.id"))
    kind: Mapped[SanctionKind] = mapped_column(_enum(SanctionKind, "sanction_kind"))
    status: Mapped[SanctionStatus] = mapped_column(StateType(SanctionStatus))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list] = mapped_column(JSON, default=list)
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship()

    __table_args__ = (
        CheckConstraint("status IN ('proposed', 'confirmed', 'cancelled')", name="status"),
    )


class Incident(Base):
    """A major security incident (clause 16) with its regulatory reporting clock.

    Declared from a case or directly; the deadline is 2 to 24 hours after
    declaration. States: open (measures being taken) → reported (to the city
    PSB and the provincial communications administration) → closed.
    """

    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[AbuseCategory] = mapped_column(_enum(AbuseCategory, "abuse_category"))
    state: Mapped[IncidentState] = mapped_column(
        StateType(IncidentState), default=IncidentState.OPEN
    )
    case_id: Mapped[int | None] = mapped_column(ForeignKey("abuse_case.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)
    declared_by: Mapped[str] = mapped_column(String(200))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_to: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)

    customer: Mapped[Customer | None] = relationship()

    __table_args__ = (
        CheckConstraint("state IN ('open', 'reported', 'closed')", name="state"),
        CheckConstraint("deadline > declared_at", name="deadline"),
    )


class IncidentAction(Base):
    """The incident's action log: measures taken, notes, the report, reminders sent."""

    __tablename__ = "incident_action"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # declare | measure | note | evidence | ...
    text: Mapped[str] = mapped_column(Text, default="")
    # A text the system wrote: its words and values, to be shown in the reader's language.
    phrase: Mapped[dict | None] = mapped_column(JSON)


class IncidentEvidence(Base):
    """An original record frozen for an incident: its bytes and hash, never edited.

    A copy, so that the evidence stays as it was even if the report it came
    from were ever archived; the hash lets anyone check it against the source.
    """

    __tablename__ = "incident_evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("abuse_report.id"))
    source: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    holder: Mapped[dict] = mapped_column(JSON, default=dict)  # who held it at the event
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    frozen_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("incident_id", "sha256", name="uq_incident_evidence_once"),)


class Site(Base):
    """An internet information service a customer or its sublessee runs (clauses 2, 3, 4, 6).

    Edits append a SiteRevision (the clause 6 report reads the one in force at
    its instant); closing a site sets `valid_to`, the row stays.
    """

    __tablename__ = "site"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    sublessee_id: Mapped[int | None] = mapped_column(ForeignKey("sublessee.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(253), index=True)
    urls: Mapped[list] = mapped_column(JSON, default=list)
    icp_number: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))  # ipam.sites.CATEGORIES
    approval_ref: Mapped[str | None] = mapped_column(String(200))
    interactive: Mapped[str | None] = mapped_column(String(16))  # forum | bbs | blog | chat
    admin_accounts: Mapped[list] = mapped_column(JSON, default=list)
    addresses: Mapped[list] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()
    sublessee: Mapped[Sublessee | None] = relationship()

    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="interval"),
    )


class SiteRevision(Base):
    __tablename__ = "site_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    snapshot: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_site_revision_site_recorded", "site_id", "recorded_at"),)


class IssuedReport(Base):
    """A report or certificate as it went out: its bytes, what was asked, who, when, and the
    audit chain's head at issue (the anchor). Never edited; downloading it again gives the
    same bytes, whose SHA-256 is in the audit log."""

    __tablename__ = "issued_report"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), index=True)  # a report's name | certificate
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    format: Mapped[str] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(8))
    file_name: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    anchor_seq: Mapped[int] = mapped_column(Integer)
    anchor_hash: Mapped[str] = mapped_column(String(64))
