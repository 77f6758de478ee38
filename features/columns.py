"""Canonical column and table names: the one place they are spelled."""


class Columns:
    """Canonical column names shared by every table and module."""

    customer_id = "customer_id"
    product_id = "product_id"
    order_id = "order_id"
    timestamp = "timestamp"
    amount = "amount"
    quantity = "quantity"
    channel = "channel"
    store_id = "store_id"
    is_return = "is_return"

    signup_date = "signup_date"
    birth_year = "birth_year"
    birth_date = "birth_date"  # customers: month and day of birth ("MM-DD"); a full date keeps only those
    gender = "gender"
    region = "region"
    member_tier = "member_tier"
    consent_profiling = "consent_profiling"
    consent_marketing = "consent_marketing"

    category = "category"
    brand = "brand"
    price = "price"
    in_stock = "in_stock"
    launched_at = "launched_at"
    subcategory = "subcategory"  # products: the level below category (category hierarchy)
    name = "name"  # products: the product's name as the storefront shows it

    event_type = "event_type"
    id_type = "id_type"  # identities: the kind of key (member_card, phone_sha256, online_account, ...)
    id_value = "id_value"  # identities: the key itself

    score = "score"
    complaint = "complaint"
    topic = "topic"

    campaign_id = "campaign_id"
    sent_at = "sent_at"
    group = "group"
    offer = "offer"
    cost = "cost"
    response_window_days = "response_window_days"
    treatment = "treatment"  # an experiment table's assignment: 1 treated, 0 control


class Tables:
    """Canonical table names; also the file stems looked for in a data folder."""

    transactions = "transactions"
    customers = "customers"
    products = "products"
    events = "events"
    feedback = "feedback"
    campaigns = "campaigns"
    identities = "identities"
    inventory = "inventory"

    ALL = ("transactions", "customers", "products", "events", "feedback", "campaigns", "identities", "inventory")


class Groups:
    """The two groups of a campaign's exposure rows: contacted, or held out at random as control."""

    treatment = "treatment"
    control = "control"

    ALL = ("treatment", "control")


class EventTypes:
    """Event types the events table may hold, strongest interest signal last."""

    view = "view"
    wishlist = "wishlist"
    try_on = "try_on"
    cart = "cart"
    purchase = "purchase"

    ALL = ("view", "wishlist", "try_on", "cart", "purchase")
