"""Messages in English and Chinese: every message in every language, formatting per locale, negotiation."""

from __future__ import annotations

import pandas as pd
import pytest

from features.i18n import (LOCALES, TEMPLATES, code_of, label, localise_frame, message, negotiate, placeholders,
                           read_catalogue, render, text_of)


def test_every_message_has_every_language_with_the_same_placeholders():
    for locale in LOCALES:
        if locale == "en":
            continue
        catalogue = read_catalogue(locale)
        entries = {m.context: m for m in catalogue if m.id}
        assert set(entries) == set(TEMPLATES), f"{locale}: run python -m features.i18n and translate"
        for code, template in TEMPLATES.items():
            entry = entries[code]
            assert entry.id == template, f"{locale} {code}: the English changed; update the translation"
            assert entry.string and not entry.fuzzy, f"{locale} {code}: untranslated"
            assert placeholders(entry.string) == placeholders(template), f"{locale} {code}: placeholders differ"
            assert text_of(code, locale) != template or not any(c.isalpha() for c in template), code


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_every_message_renders_in_every_language(code):
    examples = {"period": "quarter", "date": "2026-05-20", "day": "2026-05-20", "years": [2024, 2025],
                "windows": [14, 30], "product": "Rose ring", "tier": "gold", "current": "silver", "occasion": "qixi"}
    params = {name: examples.get(name, 3) for name in placeholders(TEMPLATES[code])}
    for locale in LOCALES:
        text = render(message(code, **params), locale)
        assert text and "{" not in text and "\x1e" not in text


def test_numbers_durations_and_percentages_follow_the_locale():
    due = message("rec.due_in", every_days=30, due_days=1)
    assert render(due) == "you buy this about every 30 days (due in about 1 day)"
    assert render(due, "zh-CN") == "您大约每30天购买一次（约1天后该补货了）"
    down = message("churn.orders_down", percent=0.42, period="half_year")
    assert render(down) == "orders down 42% on the previous half-year"
    assert render(down, "zh-CN") == "订单比上一个半年减少 42%"
    assert render(message("churn.spend", amount=12345.4)) == "spends 12,345 per order"
    assert code_of(due) == "rec.due_in"
    sent = message("report.sent", campaign="spring", date="2026-05-20", treated=1200, control=300, windows=[14, 30])
    assert render(sent).endswith("1,200 contacted, 300 held out; response window 14 days and 30 days")
    assert "触达 1,200 人" in render(sent, "zh-CN") and "14天和30天" in render(sent, "zh-CN")


def test_plain_text_and_unknown_codes_are_safe():
    assert render("popular in London", "zh-CN") == "popular in London"  # stored before messages existed
    assert code_of("popular in London") is None
    assert render("\x1erec.from_a_newer_release", "en") == ""
    with pytest.raises(KeyError):
        message("rec.no_such_message")


def test_moments_name_days_years_tiers_and_occasions_per_locale():
    occasion = message("moment.occasion_category_named", day="2026-05-20", years=[2023, 2024, 2025],
                       category="rings", occasion="day_520")
    assert render(occasion) == "bought rings around May 20 in 2023, 2024, and 2025 (520)"
    assert render(occasion, "zh-CN") == "曾在2023、2024和2025年的5月20日前后购买rings（520）"
    tier = message("moment.tier_upgrade", amount=1234.5, tier="gold", current="silver")
    assert render(tier, "zh-CN") == "12 个月内再消费 1,234 即可升级为金卡会员（目前为银卡会员）"
    assert render(message("moment.birthday", day="2026-12-03"), "zh-CN") == "12月3日生日"


def test_labels_name_codes_and_leave_custom_names_alone():
    assert label("segment", "at_risk") == "at risk"
    assert label("segment", "at_risk", "zh-CN") == "有流失风险"
    assert label("risk_band", "high", "zh-CN") == "高"
    assert label("membership", "diamond", "zh-CN") == "diamond"  # a retailer's own tier name
    assert label("segment", None) is None


@pytest.mark.parametrize("header, expected", [
    (None, "en"), ("", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("en-GB,en;q=0.9", "en"),
    ("fr-FR, zh;q=0.5", "zh-CN"), ("fr, de", "en"), ("en;q=0.2, zh-TW;q=0.8", "zh-CN"), ("zh;q=0, en", "en"),
    ("*", "en"), ("zh;q=abc, en", "en"), ("x" * 100_000, "en"), ("," * 5000 + "zh", "en"),
])
def test_accept_language_negotiation_is_bounded_and_honours_weights(header, expected):
    assert negotiate(header) == expected


def test_an_export_frame_is_localised_with_codes_kept():
    frame = pd.DataFrame({
        "customer_id": ["a", "b"], "risk_band": ["high", None], "rfm_segment": ["champions", "lost"],
        "churn_reasons": [[message("churn.recency", days=90), message("churn.channel")], []],
        "reason": [message("rec.bought_together", product="Rose ring"), "legacy text"],
    })
    zh = localise_frame(frame, "zh-CN")
    assert zh["churn_reasons"][0] == "已90天未购买; 只通过一个渠道购物" and pd.isna(zh["churn_reasons"][1])
    assert zh["churn_reason_codes"][0] == "churn.recency;churn.channel" and pd.isna(zh["churn_reason_codes"][1])
    assert zh["reason"].tolist() == ["常与 Rose ring 一起购买", "legacy text"]
    assert zh["reason_code"][0] == "rec.bought_together" and pd.isna(zh["reason_code"][1])
    assert zh["risk_band"].tolist()[0] == "high" and zh["risk_band_label"].tolist()[0] == "高"
    assert zh["rfm_segment_label"].tolist() == ["冠军客户", "已流失"]
    assert localise_frame(frame)["rfm_segment_label"].tolist() == ["champions", "lost"]


def test_a_message_is_the_same_text_whether_its_wording_was_seen_before_or_not():
    import json

    import numpy as np

    def plain(**params):  # the wording as JSON writes it, built afresh
        return "\x1e" + "churn.attribute" + "\x1f" + json.dumps(params, ensure_ascii=False, separators=(",", ":"),
                                                                   sort_keys=True)

    values = [1, 1.0, True, 0, 0.0, -0.0, np.float64(-0.0), np.float64(2.5), 2.5, float("nan"), None, "é\"\n", "1",
              [1, 2], (0.0,), (-0.0,), False]
    for _ in range(2):  # the second round reads what the first remembered
        for value in values:
            assert message("churn.attribute", value=value, feature="f") == plain(feature="f", value=value)
