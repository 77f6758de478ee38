"""Canonical table schemas: which columns each table has, which are required, and their kinds."""

from __future__ import annotations

from dataclasses import dataclass, field

from features.columns import Columns as C
from features.columns import Tables

# Column kinds; validation coerces every column of a kind the same way.
ID = "id"  # string identifier; whole floats such as 17850.0 become "17850"
TIMESTAMP = "timestamp"  # datetime64[ns], timezone-naive
NUMBER = "number"  # float64
INTEGER = "integer"  # nullable Int64
BOOL = "bool"  # nullable boolean; accepts true/false, yes/no, 1/0, y/n
TEXT = "text"  # string
MONTH_DAY = "month_day"  # "MM-DD" text from a full date or MM-DD; the year of a full date is not kept


@dataclass(frozen=True)
class TableSchema:
    """Columns of one canonical table.

    Parameters
    ----------
    name
        Table name, also the file stem looked for in a data folder.
    required
        Columns that must be present; a row with a missing value in one of them is rejected.
    optional
        Columns that may be present; missing values are allowed unless a default fills them.
    kinds
        Column name -> kind (``id``, ``timestamp``, ``number``, ``integer``, ``bool``, ``text``).
    defaults
        Values for optional columns absent from the source (e.g. ``quantity`` = 1).
    key
        Columns identifying a row uniquely (rows repeating a key are rejected as duplicates).
    required_if_present
        Optional columns that, once a source has them, must have a value on every row (a transaction log may
        lack ``product_id`` altogether, but a line without one in a log that has it is unusable).
    """

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    required_if_present: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


TRANSACTIONS = TableSchema(
    name=Tables.transactions,
    required=(C.customer_id, C.timestamp, C.amount),
    optional=(C.product_id, C.quantity, C.order_id, C.channel, C.store_id, C.is_return),
    kinds={
        C.customer_id: ID, C.timestamp: TIMESTAMP, C.amount: NUMBER, C.product_id: ID,
        C.quantity: NUMBER, C.order_id: ID, C.channel: TEXT, C.store_id: ID, C.is_return: BOOL,
    },
    defaults={C.quantity: 1.0},
    required_if_present=(C.product_id,),
)

CUSTOMERS = TableSchema(
    name=Tables.customers,
    required=(C.customer_id,),
    optional=(C.signup_date, C.birth_year, C.gender, C.region, C.member_tier,
              C.consent_profiling, C.consent_marketing, C.birth_date),
    kinds={
        C.customer_id: ID, C.signup_date: TIMESTAMP, C.birth_year: INTEGER, C.gender: TEXT,
        C.region: TEXT, C.member_tier: TEXT, C.consent_profiling: BOOL, C.consent_marketing: BOOL,
        C.birth_date: MONTH_DAY,
    },
    key=(C.customer_id,),
)

PRODUCTS = TableSchema(
    name=Tables.products,
    required=(C.product_id,),
    optional=(C.category, C.subcategory, C.brand, C.price, C.in_stock, C.launched_at, C.name),
    kinds={
        C.product_id: ID, C.category: TEXT, C.subcategory: TEXT, C.brand: TEXT, C.price: NUMBER, C.in_stock: BOOL,
        C.launched_at: TIMESTAMP, C.name: TEXT,
    },
    key=(C.product_id,),
)

EVENTS = TableSchema(
    name=Tables.events,
    required=(C.customer_id, C.product_id, C.event_type, C.timestamp),
    optional=(C.channel,),
    kinds={C.customer_id: ID, C.product_id: ID, C.event_type: TEXT, C.timestamp: TIMESTAMP, C.channel: TEXT},
)

FEEDBACK = TableSchema(
    name=Tables.feedback,
    required=(C.customer_id, C.timestamp),
    optional=(C.score, C.complaint, C.topic),
    kinds={C.customer_id: ID, C.timestamp: TIMESTAMP, C.score: NUMBER, C.complaint: BOOL, C.topic: TEXT},
)

CAMPAIGNS = TableSchema(
    name=Tables.campaigns,
    required=(C.customer_id, C.campaign_id, C.sent_at, C.group),
    optional=(C.offer, C.channel, C.cost, C.response_window_days),
    kinds={
        C.customer_id: ID, C.campaign_id: ID, C.sent_at: TIMESTAMP, C.group: TEXT, C.offer: TEXT,
        C.channel: TEXT, C.cost: NUMBER, C.response_window_days: NUMBER,
    },
    defaults={C.cost: 0.0},
    key=(C.campaign_id, C.customer_id),
)

IDENTITIES = TableSchema(
    name=Tables.identities,
    required=(C.customer_id, C.id_type, C.id_value),
    optional=(),
    kinds={C.customer_id: ID, C.id_type: TEXT, C.id_value: ID},
    key=(C.customer_id, C.id_type, C.id_value),
)

# Store-level stock: one row per store and product it carries; ``in_stock`` (or ``quantity`` > 0 when there is no
# ``in_stock``) says whether it is on the shelf now. A product without a row is not in that store.
INVENTORY = TableSchema(
    name=Tables.inventory,
    required=(C.product_id, C.store_id),
    optional=(C.in_stock, C.quantity),
    kinds={C.product_id: ID, C.store_id: ID, C.in_stock: BOOL, C.quantity: NUMBER},
    key=(C.product_id, C.store_id),
)

SCHEMAS: dict[str, TableSchema] = {
    s.name: s for s in (TRANSACTIONS, CUSTOMERS, PRODUCTS, EVENTS, FEEDBACK, CAMPAIGNS, IDENTITIES, INVENTORY)
}
