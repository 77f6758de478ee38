"""Rewrite the message template (locales/clientele.pot) from TEMPLATES and merge it into every catalogue.

    python -m features.i18n          # then translate the entries left empty (msgstr "") in each .po

New messages arrive untranslated, changed English marks the translation fuzzy, removed messages are dropped;
tests/features/test_i18n.py fails until every message has every language.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from features.i18n import DOMAIN, LOCALES, DEFAULT_LOCALE, TEMPLATES, catalogue_path

HERE = Path(__file__).parent


def template() -> Catalog:
    catalog = Catalog(domain=DOMAIN, project="Clientele", charset="utf-8")
    for code, text in TEMPLATES.items():
        catalog.add(text, context=code)
    return catalog


def main() -> None:
    pot = template()
    with open(HERE / "locales" / f"{DOMAIN}.pot", "wb") as fh:
        write_po(fh, pot, omit_header=False, width=0)
    for locale in LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        path = HERE / catalogue_path(locale)
        if path.exists():
            with open(path, "rb") as fh:
                catalog = read_po(fh, locale=locale.replace("-", "_"), domain=DOMAIN)
        else:
            catalog = Catalog(locale=locale.replace("-", "_"), domain=DOMAIN, project="Clientele")
        catalog.update(pot, no_fuzzy_matching=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            write_po(fh, catalog, width=0, ignore_obsolete=True)
        missing = sum(1 for m in catalog if m.id and not m.string)
        print(f"{path.relative_to(HERE)}: {len(TEMPLATES)} messages, {missing} untranslated")


if __name__ == "__main__":
    main()
