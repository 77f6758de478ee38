"""Human-readable text in English and Chinese, from message catalogues.

Models and reports do not write prose: they write a *message*, a stable code and its parameters
(``message("churn.recency", days=45)``), kept as a compact string in artefacts and serving tables. The edges (API
responses, CSV exports, CLI output) render it in the reader's language with :func:`render`: English from the
templates in :data:`TEMPLATES` (the catalogue's source, ``msgid``), Chinese from the gettext catalogue
``features/i18n/locales/zh_CN/LC_MESSAGES/clientele.po`` (``msgctxt`` = the code), read with Babel. Numbers,
durations, percentages and dates are formatted per locale from CLDR (Babel), by the parameter's name
(:data:`PARAM_KINDS`). Codes never change with the language, so a CRM filters on them; labels of codes
(risk bands, segments, lifecycle stages, tiers) come from the same catalogue (:func:`label`).

A text that is not a message (a reason written before messages existed, a custom name) renders as itself.
``python -m features.i18n`` rewrites the template (``locales/clientele.pot``) and merges it into every catalogue,
for translators; tests/features/test_i18n.py checks that every message has every language.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from babel.dates import format_date, format_skeleton
from babel.lists import format_list
from babel.messages import mofile, pofile
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from babel.units import format_unit

DEFAULT_LOCALE = "en"
LOCALES = ("en", "zh-CN")
DOMAIN = "clientele"
# A message starts with this character (never in readable text), then the code, then optionally the separator
# and the parameters as JSON.
MARK, SEP = "\x1e", "\x1f"

# code -> English template. Placeholders are formatted by their name's kind (PARAM_KINDS).
TEMPLATES: dict[str, str] = {
    # churn reasons (models/churn/reasons.py), one family or variant each
    "churn.recency": "no purchase for {days}",
    "churn.no_purchase_yet": "has not bought yet",
    "churn.recency_overdue": "no purchase for {days}, {ratio}x longer than usual",
    "churn.rhythm": "buys only every {days} or so",
    "churn.rhythm_once": "has bought only once",
    "churn.frequency": "only {count} orders so far",
    "churn.frequency_single": "a single order so far",
    "churn.orders_none": "no orders in the last two years",
    "churn.spend_none": "no spend in the last two years",
    "churn.orders_stopped": "no orders in the last {period}, after some the {period} before",
    "churn.spend_stopped": "no spend in the last {period}, after some the {period} before",
    "churn.orders_down": "orders down {percent} on the previous {period}",
    "churn.orders_up": "orders up {percent} on the previous {period}",
    "churn.spend_down": "spend down {percent} on the previous {period}",
    "churn.spend_up": "spend up {percent} on the previous {period}",
    "churn.spend": "spends {amount} per order",
    "churn.tenure": "customer for {days}",
    "churn.breadth": "buys from a narrow range ({count} products)",
    "churn.channel": "shops through one channel only",
    "churn.returns": "returned {percent} of what they bought",
    "churn.returns_any": "returns",
    "churn.discounts": "buys mostly on discount ({percent} of lines)",
    "churn.complaint": "one complaint in {days}",
    "churn.complaints": "{count} complaints in {days}",
    "churn.complaints_any": "complaints on record",
    "churn.satisfaction": "last satisfaction score {score}/5",
    "churn.satisfaction_none": "little feedback",
    "churn.browsing": "no browsing for {days}",
    "churn.browsing_none": "no recent browsing",
    "churn.attribute": "{feature}: {value}",
    # recommendation reasons (models/recommenders/)
    "rec.for_you": "recommended for you",
    "rec.similar_taste": "customers with similar taste bought this",
    "rec.similar_baskets": "customers with similar baskets bought this",
    "rec.shop_like_you": "customers who shop like you buy this",
    "rec.recent_purchases": "based on your recent purchases",
    "rec.recent_activity": "from your recent activity",
    "rec.regular": "you buy this regularly",
    "rec.because_bought": "because you bought {product}",
    "rec.bought_together": "bought together with {product}",
    "rec.also_bought": "customers who bought {product} also bought this",
    "rec.popular_region": "popular in {region}",
    "rec.popular_category": "popular in {category}",
    "rec.popular": "popular right now",
    "rec.popular_in_store": "popular, and on the shelf in this store",
    "rec.trending": "trending now",
    "rec.seasonal": "popular at this time of year",
    "rec.new_arrival": "new arrival",
    "rec.new_in_category": "new in {category}",
    "rec.new_in_category_bought": "new in {category}, like the ones you bought",
    "rec.new_for_taste": "new arrival, close to what you buy",
    "rec.new_like": "new, like {product}",
    "rec.same_kind": "the same kind as {product}",
    "rec.due_in": "you buy this about every {every_days} (due in about {due_days})",
    "rec.due_now": "you buy this about every {every_days} (due now)",
    "rec.bought_times": "you bought this {count} times",
    "rec.bought_before": "you bought this before",
    "rec.event_purchase": "goes with {product} you bought",
    "rec.event_cart": "goes with {product} in your cart",
    "rec.event_wishlist": "similar to {product} on your wishlist",
    "rec.event_try_on": "similar to {product} you tried on",
    "rec.event_view": "similar to {product} you viewed",
    "rec.order_online": "{reason} (not in this store: order online)",
    # campaigns and uplift (training/campaigns.py, models/uplift/)
    "campaign.no_control": "campaign {campaign} has no control group: without customers randomly held out, what "
                           "the contacted customers would have done anyway is unknown, so no lift, incremental "
                           "revenue or ROI can be measured (plan the next one with `clientele campaign plan "
                           "--holdout 0.1`)",
    "campaign.no_treated": "campaign {campaign} has no treated group: without customers randomly contacted, no "
                           "lift, incremental revenue or ROI can be measured",
    "campaign.window_open": "the data ends before the response window of {percent} of the customers does: figures "
                            "count what happened so far",
    "campaign.retention_open": "the retention horizon ({days}) has not ended for {percent} of the customers: "
                               "retention counts purchases so far",
    "uplift.flat": "the past campaigns ({treated} contacted, {control} held out) are too few for the uplift model to "
                   "tell customers apart (its trees need {count} customers per leaf in each group): every customer "
                   "gets the campaigns' average effect ({effect}), so the uplift ranks no one",
    # the campaign report as `clientele campaign report` prints it (training/campaigns.py::print_report)
    "report.sent": "campaign {campaign} sent {date}: {treated} contacted, {control} held out; response window "
                   "{windows}",
    "report.no_causal": "no causal figures: {reason}",
    "report.observed": "observed (contacted customers): {figures}",
    "report.note": "note: {note}",
    "report.part": "{part}: {treated} treated, {control} control",
    "report.all_customers": "all customers",
    "report.metric": "metric",
    "report.treated": "treated",
    "report.control": "control",
    "report.difference": "difference",
    "report.interval": "{level} interval",
    "report.relative_lift": "relative lift",
    "report.response_rate": "response rate",
    "report.orders_per_customer": "orders per customer",
    "report.revenue_per_customer": "revenue per customer",
    "report.retention_rate": "retention rate",
    "report.incremental_revenue": "incremental revenue",
    "report.roi": "ROI after cost {cost}",
    # moments to reach out (models/moments/)
    "moment.birthday": "birthday on {day}",
    "moment.occasion": "bought around {day} in {years}",
    "moment.occasion_named": "bought around {day} in {years} ({occasion})",
    "moment.occasion_category": "bought {category} around {day} in {years}",
    "moment.occasion_category_named": "bought {category} around {day} in {years} ({occasion})",
    "moment.tier_upgrade": "{amount} more spend in 12 months reaches {tier} (now {current})",
    "moment.tier_upgrade_first": "{amount} more spend in 12 months reaches {tier}",
    "occasion.valentines": "Valentine's Day",
    "occasion.day_520": "520",
    "occasion.qixi": "Qixi",
    "occasion.mothers_day": "Mother's Day",
    "occasion.christmas": "Christmas",
    "occasion.singles_day": "Singles' Day",
    "occasion.spring_festival": "Spring Festival",
    # parts named inside other messages
    "days.unknown": "an unknown number of days",
    "period.month": "month",
    "period.quarter": "quarter",
    "period.half_year": "half-year",
    "period.year": "year",
    # labels of codes
    "risk_band.low": "low",
    "risk_band.medium": "medium",
    "risk_band.high": "high",
    "segment.champions": "champions",
    "segment.loyal_customers": "loyal customers",
    "segment.potential_loyalists": "potential loyalists",
    "segment.new_customers": "new customers",
    "segment.promising": "promising",
    "segment.need_attention": "need attention",
    "segment.about_to_sleep": "about to sleep",
    "segment.at_risk": "at risk",
    "segment.cannot_lose_them": "cannot lose them",
    "segment.hibernating": "hibernating",
    "segment.lost": "lost",
    "segment.prospect": "prospect",
    "lifecycle.prospect": "prospect",
    "lifecycle.new": "new",
    "lifecycle.active": "active",
    "lifecycle.reactivated": "reactivated",
    "lifecycle.at_risk": "at risk",
    "lifecycle.lapsed": "lapsed",
    "value_tier.low": "low value",
    "value_tier.medium": "medium value",
    "value_tier.high": "high value",
    "membership.basic": "basic",
    "membership.silver": "silver",
    "membership.gold": "gold",
    "membership.platinum": "platinum",
}

# Parameter name -> how it is formatted; any other name is text inserted as it is (a product name).
PARAM_KINDS: dict[str, str] = {
    "days": "days", "every_days": "days", "due_days": "days", "windows": "days_list",
    "count": "integer", "score": "integer", "treated": "integer", "control": "integer", "effect": "signed",
    "ratio": "ratio", "percent": "percent", "amount": "amount", "date": "date",
    "period": "period", "day": "month_day", "years": "years",
    "level": "percent", "tier": "label:membership", "current": "label:membership", "occasion": "label:occasion",
    "reason": "message",
}
LABEL_KINDS = ("risk_band", "segment", "lifecycle", "value_tier", "membership", "occasion")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_MAX_HEADER = 512


# One encoder for every message: json.dumps with these settings builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def message(code: str, **params: Any) -> str:
    """A message to render later: ``code`` (a key of :data:`TEMPLATES`) and its parameters (JSON values)."""
    if code not in TEMPLATES:
        raise KeyError(f"no message {code!r} in features/i18n TEMPLATES")
    if not params:
        return MARK + code
    # Reasons repeat their wordings across a million customers: each distinct one is encoded once. Only text,
    # whole numbers, booleans, None and non-zero floats are remembered, each with its type (1, 1.0 and True are
    # equal keys but different JSON; so are -0.0 and 0.0); anything else is encoded afresh.
    key = []
    for name, value in params.items():
        kind = value.__class__
        if not (kind is str or kind is int or kind is bool or value is None
                or (isinstance(value, float) and value != 0.0)):
            return _encoded(code, params)
        key.append((name, kind, value))
    return _encoded_once(code, tuple(key))


def _encoded(code: str, params: dict[str, Any]) -> str:
    return MARK + code + SEP + _ENCODER.encode(params)


@lru_cache(maxsize=1 << 16)
def _encoded_once(code: str, key: tuple[tuple[str, type, Any], ...]) -> str:
    return _encoded(code, {name: value for name, _, value in key})


def is_message(text: Any) -> bool:
    return isinstance(text, str) and text.startswith(MARK)


def code_of(text: str) -> str | None:
    """The code of a message; None for plain text."""
    if not is_message(text):
        return None
    return text[1:].split(SEP, 1)[0]


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def catalogue_path(locale: str) -> str:
    """The .po file of a locale (zh-CN -> locales/zh_CN/LC_MESSAGES/clientele.po), relative to this package."""
    return f"locales/{locale.replace('-', '_')}/LC_MESSAGES/{DOMAIN}.po"


def read_catalogue(locale: str):  # -> babel.messages.catalog.Catalog
    with resources.files(__package__).joinpath(catalogue_path(locale)).open("rb") as fh:
        return pofile.read_po(fh, locale=locale.replace("-", "_"), domain=DOMAIN)


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """gettext translations of a locale (English: the templates themselves)."""
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    buffer = io.BytesIO()
    mofile.write_mo(buffer, read_catalogue(locale))
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def _babel(locale: str) -> str:
    return locale.replace("-", "_")


def _format(name: str, value: Any, locale: str) -> str:
    kind = PARAM_KINDS.get(name, "text")
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return text_of("days.unknown", locale) if kind == "days" else "?"
    loc = _babel(locale)
    if kind == "days":
        return format_unit(round(float(value)), "duration-day", length="long", locale=loc)
    if kind == "days_list":
        return format_list([format_unit(round(float(v)), "duration-day", length="long", locale=loc) for v in value],
                           locale=loc)
    if kind == "integer":
        return format_decimal(round(float(value)), locale=loc)
    if kind == "signed":
        return format_decimal(float(value), format="+0.0000;-0.0000", locale=loc)
    if kind == "ratio":
        return format_decimal(float(value), format="0.0", locale=loc)
    if kind == "percent":
        return format_percent(float(value), locale=loc)
    if kind == "amount":
        return format_decimal(round(float(value)), format="#,##0", locale=loc)
    if kind == "date":
        return format_date(_dt.date.fromisoformat(str(value)[:10]), format="medium", locale=loc)
    if kind == "period":
        return text_of(f"period.{value}", locale)
    if kind == "month_day":
        return format_skeleton("MMMd", _dt.date.fromisoformat(str(value)[:10]), locale=loc)
    if kind == "years":
        return format_list([str(int(y)) for y in value], locale=loc)
    if kind == "message":
        return render(str(value), locale)
    if kind.startswith("label:"):
        return label(kind[6:], value, locale)
    return str(value)


def text_of(code: str, locale: str = DEFAULT_LOCALE, **params: Any) -> str:
    """The text of message ``code`` in ``locale`` with ``params`` formatted for it."""
    template = TEMPLATES[code]
    text = translations(locale).pgettext(code, template) if locale != DEFAULT_LOCALE else template
    if not params:
        return text
    return text.format(**{k: _format(k, v, locale) for k, v in params.items()})


@lru_cache(maxsize=200_000)
def render(text: str, locale: str = DEFAULT_LOCALE) -> str:
    """A stored text in ``locale``: a message rendered, anything else as it is."""
    if not is_message(text):
        return text
    code, _, raw = text[1:].partition(SEP)
    if code not in TEMPLATES:  # a code from a newer release: say nothing rather than a code
        return ""
    return text_of(code, locale, **(json.loads(raw) if raw else {}))


def render_all(texts: Iterable[str] | None, locale: str = DEFAULT_LOCALE) -> list[str] | None:
    return None if texts is None else [render(t, locale) for t in texts]


def label(kind: str, key: Any, locale: str = DEFAULT_LOCALE) -> Any:
    """The readable name of a code (``label("segment", "at_risk", "zh-CN")``); a name the catalogue does not
    know (a retailer's own tier name) is its own label; None stays None."""
    if key is None or (isinstance(key, float) and key != key):
        return None
    code = f"{kind}.{key}"
    return text_of(code, locale) if code in TEMPLATES else str(key)


def negotiate(header: str | None) -> str:
    """The locale of an ``Accept-Language`` header: the first of :data:`LOCALES` by the reader's preference
    (``q`` weights; any Chinese tag reads zh-CN); English when nothing matches or the header is missing or
    malformed. Bounded: long headers are cut, at most 20 tags read."""
    if not header:
        return DEFAULT_LOCALE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:_MAX_HEADER].split(",")[:20]):
        tag, _, rest = part.strip().partition(";")
        weight = 1.0
        rest = rest.strip()
        if rest.startswith("q="):
            try:
                weight = float(rest[2:])
            except ValueError:
                continue
        if not tag or not 0 < weight <= 1:
            continue
        ranked.append((-weight, position, tag.lower()))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return DEFAULT_LOCALE
        if tag == "zh" or tag.startswith("zh-"):
            return "zh-CN"
        if tag == "en" or tag.startswith("en-"):
            return "en"
    return DEFAULT_LOCALE


# Coded columns of scores -> the label kind that names their values (API rows and export frames).
LABELLED_COLUMNS = {"risk_band": "risk_band", "rfm_segment": "segment", "lifecycle_stage": "lifecycle",
                    "value_tier": "value_tier", "membership_tier": "membership"}
# Columns holding lists of messages; each gets a ``<column without s>_codes`` beside it.
REASON_COLUMNS = ("churn_reasons", "uplift_reasons")


def check_locale(value: str, option: str = "--lang") -> str:
    """``value`` when it is one of :data:`LOCALES`; a one-line ConfigError naming ``option`` otherwise."""
    if value not in LOCALES:
        from features.exceptions import ConfigError

        raise ConfigError(f"{option}: must be one of {', '.join(LOCALES)}, not {value!r}")
    return value


def localise_frame(frame: Any, locale: str = DEFAULT_LOCALE) -> Any:
    """An export frame (pandas) for people reading ``locale``: ``reason`` rendered (its code kept in
    ``reason_code``), ``churn_reasons`` and ``uplift_reasons`` (lists of messages) rendered and joined with "; "
    (codes in ``churn_reason_codes`` / ``uplift_reason_codes``), and a ``<column>_label`` beside each coded column
    (risk band, segment, ...)."""
    out = frame.copy()
    if "reason" in out.columns:
        reasons = out["reason"].astype("str")
        distinct = reasons.drop_duplicates()
        texts = dict(zip(distinct, (render(r, locale) for r in distinct)))
        out["reason_code"] = reasons.map(code_of)
        out["reason"] = reasons.map(texts)
    for column in REASON_COLUMNS:
        if column in out.columns:
            lists = out[column].map(_listed)
            out[column] = lists.map(lambda rs: "; ".join(render(r, locale) for r in rs) or None)
            out[f"{column[:-1]}_codes"] = lists.map(lambda rs: ";".join(c for r in rs if (c := code_of(r))) or None)
    for column, kind in LABELLED_COLUMNS.items():
        if column in out.columns:
            values = out[column]
            distinct = values.dropna().unique()
            labels = {v: label(kind, v, locale) for v in distinct}
            out[f"{column}_label"] = values.map(labels)
    return out


def _listed(value: Any) -> list[str]:
    """A cell of a reasons column as a list (lists, arrays read back from Parquet, one text, or nothing)."""
    if value is None or isinstance(value, float):
        return []
    return [value] if isinstance(value, str) else list(value)
